"""Deterministic NL2SQL, step two: slots to SQL with SQLAlchemy's expression API.

The SQL names no tenant and no status: the guard adds both, exactly as it does for model-written SQL,
so both modes share one enforcement point. Values are rendered as literals because the guard takes
SQL text; SQLAlchemy does the quoting.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, String, Table, cast, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect as SADialect

from sieve.nl2sql.guard import Dialect
from sieve.nl2sql.slots import Slots
from sieve.stores.metadata import Document, KnowledgeBase

_DOCUMENTS: Table = Document.__table__  # type: ignore[assignment]
_KBS: Table = KnowledgeBase.__table__  # type: ignore[assignment]

# Columns a metadata answer lists for each document; `id` first, it becomes the retrieval allow-list.
ANSWER_COLUMNS = ("id", "title", "filename", "owner", "created_at")


def compile_slots(slots: Slots, *, dialect: Dialect = "sqlite") -> str:
    """SQL selecting the documents that satisfy every condition in `slots`, newest first."""
    d = _DOCUMENTS.c
    conditions: list[ColumnElement[bool]] = []
    if slots.owners:
        conditions.append(d.owner.in_(slots.owners))
    if slots.start is not None:
        conditions.append(d.created_at >= _utc(slots.start))
    if slots.end is not None:
        conditions.append(d.created_at < _utc(slots.end))
    if slots.filenames:
        conditions.append(d.filename.in_(slots.filenames))
    for name in slots.names:
        conditions.append(or_(d.filename.contains(name, autoescape=True), d.title.contains(name, autoescape=True),
                              _has_tag(name)))
    if slots.tags:
        conditions.append(or_(*(_has_tag(t) for t in slots.tags)))
    if slots.kb_names:
        conditions.append(d.kb_id.in_(select(_KBS.c.id).where(_KBS.c.name.in_(slots.kb_names))))
    stmt = select(*(d[c] for c in ANSWER_COLUMNS)).where(*conditions).order_by(d.created_at.desc(), d.id)
    return str(stmt.compile(dialect=_sa_dialect(dialect), compile_kwargs={"literal_binds": True}))


def _has_tag(tag: str) -> ColumnElement[bool]:
    """Tags are a JSON list; match the JSON-encoded string, as written with and without ASCII escapes."""
    text = cast(_DOCUMENTS.c.tags, String)
    encodings = dict.fromkeys((json.dumps(tag), json.dumps(tag, ensure_ascii=False)))
    return or_(*(text.contains(e, autoescape=True) for e in encodings))


def _utc(moment: datetime) -> datetime:
    """Stored times are UTC (SQLite keeps no offset), so compare in UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sa_dialect(dialect: Dialect) -> SADialect:
    # A non-pyformat paramstyle keeps '%' in LIKE patterns single: the SQL runs without parameters.
    if dialect == "sqlite":
        return sqlite.dialect()
    return postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]  # psycopg2's dialect is unannotated
