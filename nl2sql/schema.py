"""What NL2SQL may query, and how that is described to a model: tables, columns, types, sample values.

The allow-list and the description both come from the SQLAlchemy models, so a column added to a model
with a `doc=` string shows up here without a second list to keep in sync. Sample values are read per
tenant (and knowledge base), from documents that are ready, because that is all a question may see.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, Table, select

from sieve.nl2sql.guard import TableRule
from sieve.stores.acl import readable
from sieve.stores.metadata import Document, DocumentStatus, KnowledgeBase

_DOCUMENTS: Table = Document.__table__  # type: ignore[assignment]
_KBS: Table = KnowledgeBase.__table__  # type: ignore[assignment]

# Columns that are bookkeeping, not facts about a document: the tenant (injected by the guard),
# the lifecycle status (always 'ready' for a question), the content hash and retrieval profiles.
_INTERNAL = {"documents": {"tenant_id", "status", "content_hash"}, "knowledge_bases": {"tenant_id", "profile"}}
_TABLES: tuple[Table, ...] = (_DOCUMENTS, _KBS)

MAX_SLOT_VALUES = 5000  # distinct values read per column for slot matching
MAX_SAMPLES = 8  # sample values shown per column in the prompt


def metadata_allowlist(kb_id: str | None = None) -> dict[str, TableRule]:
    """The guard's allow-list for the metadata DB: ready documents of the tenant, optionally of one KB."""
    doc_filters = {"status": DocumentStatus.READY} | ({"kb_id": kb_id} if kb_id else {})
    return {
        "documents": TableRule(_public_columns(_DOCUMENTS), "tenant_id", doc_filters, acl_column="id"),
        "knowledge_bases": TableRule(_public_columns(_KBS), "tenant_id", {"id": kb_id} if kb_id else {}),
    }


def _public_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name not in _INTERNAL[table.name])


@dataclass(frozen=True)
class MetadataValues:
    """Distinct values a question can name, for one tenant (and KB)."""

    owners: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    kb_names: tuple[str, ...] = ()
    meta: dict[str, tuple[str, ...]] = field(default_factory=dict)  # user-defined key -> sample values


def read_values(
    engine: Engine, tenant: str, kb_id: str | None = None, *, limit: int = MAX_SLOT_VALUES,
    readers: frozenset[str] | None = None,
) -> MetadataValues:
    """Read the distinct owners, filenames, tags, KB names and meta keys visible to `tenant` (and `readers`)."""
    docs = _DOCUMENTS.c
    visible = [docs.tenant_id == tenant, docs.status == DocumentStatus.READY]
    if readers is not None:
        visible.append(readable(readers, docs.id))
    if kb_id:
        visible.append(docs.kb_id == kb_id)

    def column_values(column: Any) -> tuple[str, ...]:
        stmt = select(column).distinct().where(*visible, column != "").order_by(column).limit(limit)
        return tuple(v for v in conn.execute(stmt).scalars() if v)

    kb_stmt: Select[Any] = select(_KBS.c.name).where(_KBS.c.tenant_id == tenant).order_by(_KBS.c.name)
    if kb_id:
        kb_stmt = kb_stmt.where(_KBS.c.id == kb_id)
    with engine.connect() as conn:
        owners = column_values(docs.owner)
        filenames = column_values(docs.filename)
        kb_names = tuple(conn.execute(kb_stmt.limit(limit)).scalars())
        # JSON columns: decode in Python, so the same code serves SQLite and PostgreSQL.
        json_rows = conn.execute(select(docs.tags, docs.meta).where(*visible).limit(limit)).all()
    tag_counts: Counter[str] = Counter()
    meta_values: dict[str, Counter[str]] = {}
    for tags, meta in json_rows:
        tag_counts.update(t for t in _as_json(tags, list) if isinstance(t, str) and t)
        for key, value in _as_json(meta, dict).items():
            meta_values.setdefault(str(key), Counter())[_short(value)] += 1
    return MetadataValues(
        owners=owners,
        filenames=filenames,
        tags=tuple(sorted(tag_counts)),
        kb_names=kb_names,
        meta={k: tuple(v for v, _ in c.most_common(MAX_SAMPLES)) for k, c in sorted(meta_values.items())},
    )


def _as_json(value: Any, kind: type) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return kind()
    return value if isinstance(value, kind) else kind()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:60]


def describe_schema(values: MetadataValues, *, dialect: str = "sqlite", samples: int = MAX_SAMPLES) -> str:
    """The text an LLM sees: allowed tables and columns with types, meanings and sample values."""
    sample_by_column = {
        ("documents", "owner"): values.owners,
        ("documents", "filename"): values.filenames,
        ("documents", "tags"): values.tags,
        ("knowledge_bases", "name"): values.kb_names,
    }
    lines = [f"SQL dialect: {dialect}. Only these tables and columns exist:"]
    for table in _TABLES:
        lines.append(f"\nTABLE {table.name}")  # not the model comments: they mention tables a question cannot use
        for name in _public_columns(table):
            column = table.c[name]
            notes = [column.doc or ""] + [f"references {fk.target_fullname}" for fk in column.foreign_keys]
            if shown := sample_by_column.get((table.name, name)):
                notes.append("e.g. " + _quoted(shown[:samples]))
            if (table.name, name) == ("documents", "meta") and values.meta:
                keys = "; ".join(f"{k} (e.g. {_quoted(v[:3])})" for k, v in values.meta.items())
                notes.append(f"keys: {keys}")
            note = "; ".join(n for n in notes if n)
            lines.append(f"  {name} {column.type}" + (f" -- {note}" if note else ""))
    return "\n".join(lines)


def _quoted(items: Iterable[str]) -> str:
    return ", ".join(repr(i) for i in items)




def sqlite_allowlist(path: str | Path) -> dict[str, TableRule]:
    """Every table and column of a SQLite file, untenanted: for checking the guard on foreign databases."""
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: TableRule(tuple(r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (t,)))) for t in tables}
    finally:
        conn.close()
