"""A real metadata DB (our models; a SQLite file or a PostgreSQL database) with two tenants, shared by the NL2SQL tests.

Every string that belongs to tenant t2, and every document that is not ready, carries the marker
`SECRET`, so a test can check that no such value ever reaches the caller (tenant t1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from sieve.stores.database import init_db, make_engine
from sieve.stores.metadata import Document, DocumentStatus, KnowledgeBase, Tenant

MARKER = "SECRET"
NOW = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)


def _at(year: int, month: int, day: int = 10) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class MetadataDB:
    engine: Engine
    path: Path
    t1_doc_ids: frozenset[str]  # ready documents of t1 (all KBs)
    t1_kb_ids: frozenset[str]


# (id, tenant, kb, title, filename, owner, tags, created, status)
_DOCS = [
    ("zw-2023-train", "t1", "kb-rd", "2023年大模型训练工作总结", "zw-2023-summary.docx", "张伟", ["工作总结", "大模型"], _at(2023, 6), "ready"),
    ("zw-2023-q4", "t1", "kb-rd", "2023年第四季度周报", "周报-2023-11.docx", "张伟", ["周报"], _at(2023, 11), "ready"),
    ("zw-2024-train", "t1", "kb-rd", "2024年大模型训练工作总结", "zw-2024-summary.docx", "张伟", ["工作总结"], _at(2024, 2), "ready"),
    ("ln-2023-eval", "t1", "kb-rd", "大模型评测报告", "eval.pdf", "李娜", ["大模型"], _at(2023, 8), "ready"),
    ("ln-2024-weekly", "t1", "kb-rd", "周报 4月", "周报-2024-04.md", "李娜", ["周报"], _at(2024, 4, 20), "ready"),
    ("ann-2024-hr", "t1", "kb-hr", "Annual leave policy", "leave-policy.pdf", "Ann Lee", ["policy"], _at(2024, 3), "ready"),
    ("zw-2023-indexing", "t1", "kb-rd", f"{MARKER} 张伟 half-indexed 2023", f"{MARKER}.docx", "张伟", [], _at(2023, 7), "indexing"),
    ("t2-zw-2023", "t2", "kb-t2", f"{MARKER} 张伟 2023 大模型训练工作总结", f"{MARKER}-t2.docx", "张伟", ["工作总结"], _at(2023, 5), "ready"),
    ("t2-other", "t2", "kb-t2", f"{MARKER} t2 report", f"{MARKER}-2.pdf", f"{MARKER} Owner", [MARKER], _at(2024, 4, 2), "ready"),
]


def make_metadata_db(folder: Path, url: str | None = None) -> MetadataDB:
    """The rows below in a SQLite file under `folder`, or in the (empty) database at `url`."""
    path = folder / "metadata.db"
    engine = make_engine(url or f"sqlite:///{path}")
    sessions = init_db(engine)
    with sessions() as s:
        s.add_all([Tenant(id="t1", name="tenant one"), Tenant(id="t2", name=f"{MARKER} tenant")])
        s.flush()
        s.add_all([
            KnowledgeBase(id="kb-rd", tenant_id="t1", name="研发部", description="R&D"),
            KnowledgeBase(id="kb-hr", tenant_id="t1", name="hr", description="people"),
            KnowledgeBase(id="kb-t2", tenant_id="t2", name=f"{MARKER} kb", description=MARKER),
        ])
        s.flush()
        for doc_id, tenant, kb, title, filename, owner, tags, created, status in _DOCS:
            s.add(Document(
                id=doc_id, tenant_id=tenant, kb_id=kb, title=title, filename=filename, owner=owner, tags=tags,
                content_hash=f"{MARKER}-{doc_id}", meta={"department": "R&D" if kb == "kb-rd" else "HR"},
                status=status, created_at=created, updated_at=created,
            ))
        s.commit()
    return MetadataDB(
        engine=engine,
        path=path,
        t1_doc_ids=frozenset(d[0] for d in _DOCS if d[1] == "t1" and d[8] == DocumentStatus.READY),
        t1_kb_ids=frozenset({"kb-rd", "kb-hr"}),
    )


def leaked(rows: list[tuple[object, ...]]) -> list[object]:
    """Cells that belong to another tenant or to a document that is not ready."""
    return [cell for row in rows for cell in row if MARKER in str(cell)]
