"""The queries on documents, chunks, knowledge bases and jobs, written once for the API, the CLI and migrations.

A knowledge base has two identities that are both strings: the name users type (`KbName`, unique within
a tenant) and the id every store is keyed by (`KbId`). `kb_id` turns one into the other; the distinct
types keep a name from reaching a store call (and an id from reaching a user's message).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NewType

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from sieve.stores.acl import where_readable
from sieve.stores.catalog import KnowledgeBaseNotFound, get_kb
from sieve.stores.metadata import Chunk, Document, DocumentStatus, Evaluation, JobRecord, JobStatus, KnowledgeBase

KbId = NewType("KbId", str)
"""A knowledge base's id: the key of its rows and index entries."""
KbName = NewType("KbName", str)
"""A knowledge base's name within its tenant, as users type it."""


@dataclass(frozen=True)
class KnowledgeBaseRef:
    """A knowledge base found by its name: the name for messages and job records, the id for the stores."""

    name: KbName
    id: KbId


def kb_id(session: Session, tenant: str, name: KbName | str) -> KbId:
    """The id of the tenant's knowledge base `name`; `KnowledgeBaseNotFound` otherwise."""
    return KbId(get_kb(session, tenant, name).id)


def knowledge_base(session: Session, tenant: str, kb: KnowledgeBaseRef) -> KnowledgeBase:
    """The row of a knowledge base found before; `KnowledgeBaseNotFound` when it was deleted since."""
    row = session.get(KnowledgeBase, kb.id)
    if row is None or row.tenant_id != tenant:
        raise KnowledgeBaseNotFound(tenant, kb.name)
    return row


def ready_documents(tenant: str, kb: KbId, readers: frozenset[str] | None = None) -> Select[Document]:
    """The tenant's indexed documents of knowledge base `kb` that `readers` may read (None: all of them)."""
    return where_readable(select(Document).where(
        Document.tenant_id == tenant, Document.kb_id == kb, Document.status == DocumentStatus.READY), readers)


def list_documents(session: Session, tenant: str, kb: KbId, readers: frozenset[str] | None = None) -> list[Document]:
    """`ready_documents` by file name."""
    return list(session.scalars(ready_documents(tenant, kb, readers).order_by(Document.filename)))


def get_document(session: Session, tenant: str, kb: KbId, doc_id: str,
                 readers: frozenset[str] | None = None) -> Document | None:
    """The ready document `doc_id` of the knowledge base when `readers` may read it; None otherwise (missing,
    another tenant's or KB's, being indexed, or hidden alike)."""
    return session.scalar(ready_documents(tenant, kb, readers).where(Document.id == doc_id))


def ready_document_ids(session: Session, kb: KbId) -> list[str]:
    """Every ready document id of the knowledge base, in id order (a migration's work list)."""
    return list(session.scalars(select(Document.id).where(
        Document.kb_id == kb, Document.status == DocumentStatus.READY).order_by(Document.id)))


def current_content_hash(session: Session, tenant: str, kb: KbId, source_uri: str) -> str | None:
    """The content hash of the ready version of the document from `source_uri`, if there is one."""
    return session.scalar(ready_documents(tenant, kb).with_only_columns(Document.content_hash)
                          .where(Document.source_uri == source_uri))


def documents_by_id(session: Session, doc_ids: Collection[str]) -> Sequence[Document]:
    """The documents `doc_ids` (any status), as a migration copies them."""
    return session.scalars(select(Document).where(Document.id.in_(doc_ids))).all()


def filenames(session: Session, tenant: str, doc_ids: Collection[str]) -> dict[str, str]:
    """Document id -> file name, for the tenant's documents among `doc_ids`."""
    rows = session.execute(select(Document.id, Document.filename).where(
        Document.tenant_id == tenant, Document.id.in_(doc_ids)))
    return {doc_id: filename for doc_id, filename in rows}


def mark_ready(session: Session, doc_ids: Collection[str]) -> None:
    """Makes the documents searchable: their chunks are in every engine."""
    session.execute(update(Document).where(Document.id.in_(doc_ids)).values(status=DocumentStatus.READY))


def content_in_use(session: Session, content_hash: str, source_prefix: str) -> bool:
    """Whether any document (any tenant, any status) from a source under `source_prefix` has these bytes."""
    return session.scalar(select(Document.id).where(
        Document.content_hash == content_hash, Document.source_uri.startswith(source_prefix)).limit(1)) is not None


def set_content_hash(session: Session, doc_id: str, content_hash: str) -> None:
    session.execute(update(Document).where(Document.id == doc_id).values(content_hash=content_hash))


def count_named_documents(session: Session, kb: KbId, filenames: Collection[str]) -> int:
    """How many ready documents of the knowledge base have one of `filenames`."""
    return session.scalar(select(func.count()).select_from(Document).where(
        Document.kb_id == kb, Document.status == DocumentStatus.READY, Document.filename.in_(filenames))) or 0


def document_chunks(session: Session, tenant: str, doc_id: str) -> Sequence[Chunk]:
    """The document's chunks in reading order."""
    return session.scalars(select(Chunk).where(Chunk.doc_id == doc_id, Chunk.tenant_id == tenant)
                           .order_by(Chunk.ordinal)).all()


def chunks_of_documents(session: Session, doc_ids: Collection[str]) -> Sequence[Chunk]:
    """The chunks of the documents `doc_ids`, by document, each document's in reading order."""
    return session.scalars(select(Chunk).where(Chunk.doc_id.in_(doc_ids)).order_by(Chunk.doc_id, Chunk.ordinal)).all()


def count_chunks(session: Session, kb: KbId) -> int:
    """The knowledge base's chunks, of documents in any status."""
    return session.scalar(select(func.count()).select_from(Chunk).where(Chunk.kb_id == kb)) or 0


def chunk_location(session: Session, tenant: str, doc_id: str, chunk_id: str) -> dict[str, Any] | None:
    """Where on which page the chunk was read (an image's or a scan's); None for a chunk of plain text."""
    return session.scalar(select(Chunk.meta).where(
        Chunk.id == chunk_id, Chunk.doc_id == doc_id, Chunk.tenant_id == tenant)) or None


def cited_chunk(session: Session, kb: KbName, doc_id: str, chunk_id: str,
                readers: frozenset[str] | None = None) -> tuple[str, Chunk, Document] | None:
    """(tenant, chunk, document) of a ready document's chunk in a knowledge base called `kb` of any tenant
    (a signed link names no tenant; the caller checks the signature, or the tenant, against it)."""
    row = session.execute(where_readable(
        select(KnowledgeBase.tenant_id, Chunk, Document)
        .join(Document, Document.id == Chunk.doc_id)
        .join(KnowledgeBase, KnowledgeBase.id == Document.kb_id)
        .where(Chunk.id == chunk_id, Document.id == doc_id, KnowledgeBase.name == kb,
               KnowledgeBase.tenant_id == Document.tenant_id, Document.status == DocumentStatus.READY),
        readers)).first()
    return None if row is None else (row[0], row[1], row[2])


def list_evaluations(session: Session, tenant: str, kb: KbId) -> list[Evaluation]:
    """The knowledge base's evaluations, newest first."""
    return list(session.scalars(select(Evaluation).where(Evaluation.tenant_id == tenant, Evaluation.kb_id == kb)
                                .order_by(Evaluation.created_at.desc())))


def get_evaluation(session: Session, tenant: str, kb: KbId, evaluation_id: str) -> Evaluation | None:
    return session.scalar(select(Evaluation).where(
        Evaluation.id == evaluation_id, Evaluation.tenant_id == tenant, Evaluation.kb_id == kb))


def add_evaluation(session: Session, tenant: str, kb: KbId, kind: str, name: str) -> Evaluation:
    """A new evaluation, running; flushed, so its id and creation time are set."""
    row = Evaluation(tenant_id=tenant, kb_id=kb, kind=kind, name=name, status="running")
    session.add(row)
    session.flush()
    return row


def finish_evaluation(session: Session, evaluation_id: str, status: str, now: datetime, *, error: str | None = None,
                      result: dict[str, Any] | None = None) -> None:
    """Records how the evaluation ended; nothing when it is gone (with its knowledge base)."""
    row = session.get(Evaluation, evaluation_id)
    if row is not None:
        row.status, row.finished_at, row.error, row.result = status, now, error, result


def save_job(session: Session, record: JobRecord) -> None:
    """Inserts or updates the job's row from `record`, which stays outside the session (the job queue keeps it)."""
    session.merge(record)


def get_job(session: Session, tenant: str, job_id: str) -> JobRecord | None:
    """The tenant's job `job_id`; None when there is none (or it is another tenant's)."""
    return session.scalar(select(JobRecord).where(JobRecord.id == job_id, JobRecord.tenant_id == tenant))


def fail_unfinished_jobs(session: Session, home: str, error: str, now: datetime) -> int:
    """Marks the jobs a stopped server on `home` left queued or running as failed; returns how many."""
    return len(session.execute(
        update(JobRecord).where(JobRecord.home == home, JobRecord.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .values(status=JobStatus.FAILED, finished_at=now, error=error).returning(JobRecord.id)
    ).all())
