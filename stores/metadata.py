"""Metadata DB schema (SQLAlchemy 2): tenants, knowledge bases, documents, chunks, ingest journal.

The same models run on SQLite (embedded default) and PostgreSQL. Column `doc` strings are what
NL2SQL's schema description shows the model, so keep them short and true.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, PlainSerializer, WithJsonSchema
from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """`moment` with a time zone: SQLite hands back naive datetimes for the `DateTime(timezone=True)`
    columns below, and they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc),
                        PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
                        WithJsonSchema({"type": "string", "format": "date-time"})]
"""A column's moment in a response: always aware, written as `isoformat()` (`+00:00`, not pydantic's `Z`)."""


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = {"comment": "An isolated customer; every row below belongs to one tenant."}

    id: Mapped[str] = mapped_column(String(64), primary_key=True, doc="tenant identifier")
    name: Mapped[str] = mapped_column(String(200), default="", doc="display name")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class KnowledgeBase(Base):
    __tablename__ = "knowledge_bases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        {"comment": "A named collection of documents searched together."},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), doc="knowledge base name")
    description: Mapped[str] = mapped_column(Text, default="")
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="retrieval profile overrides")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DocumentStatus(StrEnum):
    """A document is searchable only while `ready`; the other states exist for crash recovery."""

    INDEXING = "indexing"
    READY = "ready"
    DELETING = "deleting"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_kb_source", "kb_id", "source_uri"),
        Index("ix_documents_kb_hash", "kb_id", "content_hash"),
        {"comment": "One ingested file (one version of it); its chunks live in the chunks table."},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id"), index=True)
    title: Mapped[str] = mapped_column(String(500), default="", doc="document title")
    filename: Mapped[str] = mapped_column(String(500), default="", doc="file name without folders")
    source_uri: Mapped[str] = mapped_column(String(2000), default="", doc="where the file came from")
    owner: Mapped[str] = mapped_column(String(200), default="", doc="owner or author of the document")
    tags: Mapped[list[str]] = mapped_column(default=list, doc="free tags")
    mime_type: Mapped[str] = mapped_column(String(100), default="")
    content_hash: Mapped[str] = mapped_column(String(64), doc="sha256 of the file bytes")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="user-defined metadata")
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.INDEXING, index=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, doc="when created")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, doc="last change")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_doc_ordinal", "doc_id", "ordinal"),
        {"comment": "A piece of a document as indexed for retrieval."},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    kb_id: Mapped[str] = mapped_column(String(32), index=True)
    ordinal: Mapped[int] = mapped_column(Integer, doc="position in the document")
    token_start: Mapped[int] = mapped_column(Integer)
    token_end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    # where the chunk was read (paged files): {"page": first page, "regions": [{"page", "box"}]}, box
    # as fractions of the page (x0, y0, x1, y1); None for files without pages
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    document: Mapped[Document] = relationship(back_populates="chunks")


class DocumentAcl(Base):
    """One access-list entry of a document (`*`, `user:<id>` or `group:<name>`); see `sieve.stores.acl`."""

    __tablename__ = "document_acl"
    # a caller's readers are few: the planner finds readable documents from the entry side
    __table_args__ = (Index("ix_document_acl_entry", "entry", "doc_id"),)

    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    entry: Mapped[str] = mapped_column(String(210), primary_key=True)


class IngestJournal(Base):
    """One row per ingest operation; `finished_at` stays empty if the process died mid-way."""

    __tablename__ = "ingest_journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    kb_id: Mapped[str] = mapped_column(String(32))
    doc_id: Mapped[str] = mapped_column(String(32), index=True)
    operation: Mapped[str] = mapped_column(String(16), doc="add | replace | delete | reconcile")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobKind(StrEnum):
    INGEST = "ingest"
    REINDEX = "reindex"
    GRAPH_BUILD = "graph_build"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRecord(Base):
    """A server's ingest, re-index or graph-build job, kept across restarts (`GET /v1/jobs/{id}`)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    # the SIEVE_HOME of the server that runs it: one server per home, so a restart there may fail
    # what it left unfinished, and never another server's jobs on a shared metadata DB
    home: Mapped[str] = mapped_column(String(1024))
    kb: Mapped[str] = mapped_column(String(200), doc="the knowledge base's name, as the caller gave it")
    kind: Mapped[str] = mapped_column(String(16), doc="a JobKind")
    filename: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), index=True, doc="a JobStatus")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Evaluation(Base):
    """A retrieval (BEIR) or answer-or-refuse evaluation run on one knowledge base, kept to compare runs."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_kb_created", "kb_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), doc="beir | refusal")
    name: Mapped[str] = mapped_column(String(200), default="", doc="what was evaluated, e.g. the data set's folder")
    status: Mapped[str] = mapped_column(String(16), doc="running | succeeded | failed")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EmbeddingCacheEntry(Base):
    """Passage vectors keyed by (embedder name, chunk text hash): unchanged text is never re-embedded."""

    __tablename__ = "embedding_cache"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class ApiKey(Base):
    """An API key of one tenant. Only the sha256 of the key is stored; the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), doc="the key's first characters, to recognise it in listings")
    name: Mapped[str] = mapped_column(String(200), default="")
    # the principal the key speaks for; no user and no groups reads the whole tenant
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    groups: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class GraphEntity(Base):
    """A named entity of one knowledge base; its id derives from (tenant, kb, normalised name)."""

    __tablename__ = "graph_entities"
    __table_args__ = (Index("ix_graph_entities_kb_norm", "tenant_id", "kb_id", "norm"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    kb_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(500), doc="first surface form seen")
    type: Mapped[str] = mapped_column(String(16), doc="person | place | organization | other")
    norm: Mapped[str] = mapped_column(String(500), doc="normalised name")


class GraphRelation(Base):
    """`head --relation--> tail` as stated in one chunk; the same pair in two chunks is two rows."""

    __tablename__ = "graph_relations"
    __table_args__ = (
        # the walk takes an entity's strongest relations first, from either end
        Index("ix_graph_relations_head", "head_id", "weight"),
        Index("ix_graph_relations_tail", "tail_id", "weight"),
        Index("ix_graph_relations_doc", "doc_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    kb_id: Mapped[str] = mapped_column(String(32))
    head_id: Mapped[str] = mapped_column(ForeignKey("graph_entities.id"))
    tail_id: Mapped[str] = mapped_column(ForeignKey("graph_entities.id"))
    relation: Mapped[str] = mapped_column(String(200))
    weight: Mapped[float] = mapped_column(Float)
    chunk_id: Mapped[str] = mapped_column(String(32))
    doc_id: Mapped[str] = mapped_column(String(32))


class GraphLink(Base):
    """An entity is mentioned in a chunk (by one of the chunk's relations)."""

    __tablename__ = "graph_links"
    __table_args__ = (
        Index("ix_graph_links_doc", "doc_id"),
        # a walk starts from an entity's strongest links: a hub costs fan-out rows, not its degree
        Index("ix_graph_links_entity_weight", "entity_id", "weight", "chunk_id"),
    )

    entity_id: Mapped[str] = mapped_column(ForeignKey("graph_entities.id"), primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    doc_id: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[str] = mapped_column(String(64))
    kb_id: Mapped[str] = mapped_column(String(32))
    weight: Mapped[float] = mapped_column(Float, doc="strongest relation of the entity in the chunk")
