"""What the routes answer, as pydantic models (`*Public`): FastAPI validates each response against its
model and OpenAPI shows it. The OpenAI-compatible shapes are in `openai_types.py`.

Field names and values are the wire format clients rely on; a model never reads a request.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import inspect

from sieve.api.job_queue import Job
from sieve.retrievers.types import Hit
from sieve.stores.metadata import Chunk, Document, Evaluation, JobKind, JobRecord, JobStatus, KnowledgeBase, UtcDatetime


class KnowledgeBasePublic(BaseModel):
    name: str
    description: str
    documents: int = Field(description="Ready documents the caller may read.")
    chunks: int = Field(description="Their chunks.")
    created_at: UtcDatetime

    @classmethod
    def of(cls, kb: KnowledgeBase, documents: int = 0, chunks: int = 0) -> KnowledgeBasePublic:
        return cls(name=kb.name, description=kb.description, documents=documents, chunks=chunks,
                   created_at=kb.created_at)


class KnowledgeBasesPublic(BaseModel):
    data: list[KnowledgeBasePublic] = Field(description="By name.")


class HitPublic(BaseModel):
    doc_id: str
    chunk_id: str
    filename: str
    title: str
    text: str
    score: float = Field(description="The fused score (orders hits before any reranker).")
    relevance: float | None = Field(description="The reranker's score when reranked, else the embedding cosine.")
    ranks: dict[str, int] = Field(description="Recall path -> 1-based rank in that path.")
    location: dict[str, Any] | None = Field(description="An image's or a scan's chunk: its page and regions (the "
                                            "page image: `.../chunks/{chunk_id}/image`).")

    @classmethod
    def of(cls, hit: Hit) -> HitPublic:
        return cls.model_validate(hit, from_attributes=True)


class SearchHitPublic(HitPublic):
    path_scores: dict[str, float] = Field(description="Recall path -> that path's raw score.")


class SearchPublic(BaseModel):
    hits: list[SearchHitPublic] = Field(description="Best first.")
    degraded: list[str]
    paths: list[str] = Field(description="The recall paths that ran.")
    reranker: str
    reranked: bool
    relevance_threshold: float | None
    timings_ms: dict[str, float] = Field(description="Time per stage.")


class DocumentPublic(BaseModel):
    doc_id: str
    filename: str
    title: str
    owner: str
    tags: list[str]
    meta: dict[str, Any]
    mime_type: str
    source_uri: str
    chunks: int
    created_at: UtcDatetime | None
    updated_at: UtcDatetime | None
    acl: list[str] = Field(description="Who may read it: `*` (the whole tenant), `user:<id>`, `group:<name>`.")
    chunk_texts: list[str] | None = Field(None, description="With `?chunks=true` only: the chunks' text in order.")

    @classmethod
    def of(cls, doc: Document, acl: tuple[str, ...], chunk_texts: list[str] | None = None) -> DocumentPublic:
        public = cls(doc_id=doc.id, filename=doc.filename, title=doc.title, owner=doc.owner, tags=doc.tags,
                     meta=doc.meta, mime_type=doc.mime_type, source_uri=doc.source_uri, chunks=doc.chunk_count,
                     created_at=doc.created_at, updated_at=doc.updated_at, acl=list(acl))
        if chunk_texts is not None:  # set only when asked for: unset, it is left out of the response
            public.chunk_texts = chunk_texts
        return public


class DocumentsPublic(BaseModel):
    data: list[DocumentPublic] = Field(description="By file name.")


class ChunkPublic(BaseModel):
    chunk_id: str
    ordinal: int
    token_start: int
    token_end: int
    text: str
    location: dict[str, Any] | None = Field(description="Where on which page, for a chunk read from an image or a "
                                            "scan.")

    @classmethod
    def of(cls, chunk: Chunk) -> ChunkPublic:
        return cls(chunk_id=chunk.id, ordinal=chunk.ordinal, token_start=chunk.token_start,
                   token_end=chunk.token_end, text=chunk.text, location=chunk.meta)


class ChunksPublic(BaseModel):
    doc_id: str
    filename: str
    data: list[ChunkPublic] = Field(description="In reading order.")


class AclPublic(BaseModel):
    doc_id: str
    acl: list[str]


class ProgressPublic(BaseModel):
    done: int
    total: int


class JobPublic(BaseModel):
    id: str
    kind: JobKind
    kb: str
    filename: str
    status: JobStatus
    error: str | None
    report: dict[str, Any] | None = Field(description="When finished: what the job did (added, replaced, failed "
                                          "... for an ingest; extracted, skipped, relations ... for a graph build).")
    progress: ProgressPublic | None = Field(description="Pages read (OCR) or documents extracted so far; none after "
                                            "a restart.")
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None

    @classmethod
    def of(cls, job: Job) -> JobPublic:
        """The job's row, its columns read as they are (the fields above have their names), and its progress."""
        columns = {column.key: getattr(job.record, column.key) for column in inspect(JobRecord).column_attrs}
        return cls.model_validate(columns | {"progress": job.progress}, from_attributes=True)


class EvaluationPublic(BaseModel):
    id: str
    kind: str = Field(description="`beir` or `refusal`.")
    name: str
    status: str = Field(description="`running`, `succeeded` or `failed`.")
    error: str | None
    created_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    result: dict[str, Any] | None = Field(description="When succeeded: per run (beir) or per threshold (refusal).")

    @classmethod
    def of(cls, row: Evaluation, interrupted: str | None = None) -> EvaluationPublic:
        """`interrupted`: why a row still `running` is not (its server stopped mid-way)."""
        status, error = ("failed", interrupted) if interrupted and row.status == "running" else (row.status, row.error)
        return cls(id=row.id, kind=row.kind, name=row.name, status=status, error=error, created_at=row.created_at,
                   finished_at=row.finished_at, result=row.result)


class EvaluationsPublic(BaseModel):
    data: list[EvaluationPublic] = Field(description="Newest first.")


class ThreadTurnPublic(BaseModel):
    question: str
    kb: str
    answer: str
    route: str
    rewritten_query: str
    refused: bool
    refusal_reason: str
    citations: list[dict[str, Any]] = Field(description="As in `done`, each with the `url` that opens its chunk.")
    degraded: list[str]
    timings_ms: dict[str, float]


class ThreadPublic(BaseModel):
    thread_id: str
    turns: list[ThreadTurnPublic] = Field(description="Oldest first.")


class CitedChunkPublic(BaseModel):
    kb: str
    doc_id: str
    chunk_id: str
    filename: str
    title: str
    ordinal: int
    page: int | None = Field(description="For a chunk read from a scan or an image: its first page.")
    text: str


class ToolsPublic(BaseModel):
    tools: list[dict[str, Any]] = Field(description="OpenAI `tools=` entries.")


class HealthPublic(BaseModel):
    status: str


class ReadinessPublic(BaseModel):
    status: str = Field(description="`ready`, `degraded` (still 200) or `unavailable` (503).")
    checks: dict[str, bool] = Field(description="Each store answers.")
    components: dict[str, dict[str, Any]] = Field(description="Each store's and model's state.")
