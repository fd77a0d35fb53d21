"""`sieve migrate`: move one knowledge base from the engines in use into the engines a profile names.

Rows are copied as they are, ids included, so chunk ids (and search results) stay the same. Vectors come
from the embedding cache: nothing is embedded again unless the cache lacks a text. The text index is
rebuilt from the chunks, and the knowledge graph from the source's SQL graph tables (entity ids derive
from tenant, KB and name, so they come out the same). Documents arrive `indexing` and turn `ready` only once
both engines hold them, so a migration that dies half-way leaves nothing half-visible (the target's reconcile purges it) and
running it again finishes the job: documents already `ready` in the target are skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from more_itertools import chunked
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, aliased
from tqdm import tqdm

from sieve.errors import Conflict, InvalidInput
from sieve.ingest.pipeline import Ingestor
from sieve.settings import Settings
from sieve.stores import crud
from sieve.stores.acl import acls_of, store_acl
from sieve.stores.catalog import find_kb, get_kb
from sieve.stores.crud import KbId
from sieve.stores.embedding_cache import embed_passages_cached, text_hash
from sieve.stores.graph import ChunkTriples, Triple
from sieve.stores.metadata import Base, DocumentStatus, GraphEntity, GraphRelation, Tenant
from sieve.stores.stack import Stack
from sieve.stores.types import IndexedChunk, SearchFilter

M = TypeVar("M", bound=Base)
# settings that decide which embedder (and so which vector space) a stack uses
_EMBEDDER_FIELDS = ("embedder", "embedder_model", "embedder_model_path", "embedder_base_url")


@dataclass
class MigrationReport:
    tenant: str
    kb: str
    skipped: int  # documents already ready in the target
    documents: int = 0  # copied by this run
    chunks: int = 0
    embedded: int = 0  # texts the embedding cache lacked
    relations: int = 0  # knowledge-graph relations copied
    target_chunks: int = 0  # the KB's chunk rows, text entries and vectors in the target, after the run
    target_text: int = 0
    target_vectors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_target(source: Stack, target_settings: Settings) -> Stack:
    """The target stack, on another metadata DB than the source's. It shares the source's embedder when
    the profile names the same one, so the vector space (and the cached vectors) carry over; a different
    embedder is refused by `migrate_kb`."""
    if source.settings.resolved_database_url == target_settings.resolved_database_url:
        raise InvalidInput("the profile names the metadata DB in use now: nothing to migrate into")
    same = all(getattr(source.settings, f) == getattr(target_settings, f) for f in _EMBEDDER_FIELDS)
    return Stack(target_settings, embedder=source.embedder if same else None)


def migrate_kb(
    source: Stack, target: Stack, tenant: str, kb: str, batch_docs: int = 64, progress: bool = False
) -> MigrationReport:
    if source.embedder.name != target.embedder.name:
        raise InvalidInput(
            f"the profile's embedder ({target.embedder.name}) differs from this KB's ({source.embedder.name}): "
            "its vectors would not match; migrate with the same embedder settings"
        )
    with source.sessions() as session:
        kb_row = get_kb(session, tenant, kb)
        tenant_row = session.get(Tenant, tenant)
        doc_ids = crud.ready_document_ids(session, KbId(kb_row.id))
    with target.sessions.begin() as session:
        existing = find_kb(session, tenant, kb)
        if existing is not None and existing.id != kb_row.id:
            raise Conflict(f"the target already has another knowledge base named {kb!r} for tenant {tenant!r}")
        if tenant_row is not None and session.get(Tenant, tenant) is None:
            session.add(_copy(tenant_row))
            session.flush()
        if existing is None:
            session.add(_copy(kb_row))

    Ingestor(target)  # reconciles: purges what an interrupted run left `indexing`
    with target.sessions() as session:
        done = set(crud.ready_document_ids(session, KbId(kb_row.id)))
    todo = [d for d in doc_ids if d not in done]
    report = MigrationReport(tenant, kb, skipped=len(doc_ids) - len(todo))
    bar = tqdm(total=len(todo), desc=f"migrate {kb}", unit="doc", disable=not progress)
    for batch in chunked(todo, batch_docs):
        chunks, embedded, relations = _copy_batch(source, target, tenant, kb_row.id, batch)
        report.documents += len(batch)
        report.chunks += chunks
        report.embedded += embedded
        report.relations += relations
        bar.update(len(batch))
    bar.close()
    if optimize := getattr(target.vectors, "optimize", None):  # embedded engines build HNSW on request only
        optimize()

    flt = SearchFilter(tenant, kb_row.id)
    with target.sessions() as session:
        report.target_chunks = crud.count_chunks(session, KbId(kb_row.id))
    report.target_text, report.target_vectors = target.text.count(flt), target.vectors.count(flt)
    return report


def _copy_batch(
    source: Stack, target: Stack, tenant: str, kb_id: str, doc_ids: Sequence[str]
) -> tuple[int, int, int]:
    """Rows, then engines, then `ready`: returns (chunks, texts embedded, graph relations)."""
    with source.sessions() as session:
        docs = crud.documents_by_id(session, doc_ids)
        chunks = crud.chunks_of_documents(session, doc_ids)
        triples = _graph_triples(session, doc_ids)
        acls = acls_of(session, list(doc_ids))
    with target.sessions.begin() as session:
        _add_copies(session, docs, status=DocumentStatus.INDEXING)
        _add_copies(session, chunks)
        for doc_id, acl in acls.items():
            store_acl(session, doc_id, acl)
    vectors, embedded = embed_passages_cached(source.embedder, source.embedding_cache, [c.text for c in chunks])
    target.embedding_cache.put_many({c.text_hash: v for c, v in zip(chunks, vectors)})
    indexed = [IndexedChunk(c.id, c.doc_id, tenant, kb_id, c.text, acls[c.doc_id]) for c in chunks]
    target.text.add(indexed)
    target.vectors.add(indexed, vectors)
    relations = 0
    if triples:
        # entity names are embedded when the graph stores them: hand over their cached vectors first
        names = {name for c in triples for t in c.triples for name in (t.head, t.tail)}
        target.embedding_cache.put_many(source.embedding_cache.get_many([text_hash(n) for n in names]))
        relations = target.graph.add(tenant, kb_id, triples)
    with target.sessions.begin() as session:
        crud.mark_ready(session, doc_ids)
    return len(chunks), embedded, relations


def _graph_triples(session: Session, doc_ids: Sequence[str]) -> list[ChunkTriples]:
    """The documents' relations in the source's SQL graph tables, as the graph store takes them."""
    head, tail = aliased(GraphEntity), aliased(GraphEntity)
    rows = session.execute(
        select(GraphRelation.chunk_id, GraphRelation.doc_id, head.name, head.type, GraphRelation.relation,
               tail.name, tail.type, GraphRelation.weight)
        .join(head, head.id == GraphRelation.head_id)
        .join(tail, tail.id == GraphRelation.tail_id)
        .where(GraphRelation.doc_id.in_(doc_ids))
        .order_by(GraphRelation.id)
    ).all()
    by_chunk: dict[tuple[str, str], list[Triple]] = defaultdict(list)
    for chunk_id, doc_id, head_name, head_type, relation, tail_name, tail_type, weight in rows:
        by_chunk[(chunk_id, doc_id)].append(Triple(head_name, head_type, relation, tail_name, tail_type, weight))
    return [ChunkTriples(chunk_id, doc_id, triples) for (chunk_id, doc_id), triples in by_chunk.items()]


def _add_copies(session: Session, rows: Sequence[Base], **overrides: Any) -> None:
    session.add_all(_copy(row, **overrides) for row in rows)
    session.flush()  # documents before their chunks: the foreign key is checked per statement


def _copy(row: M, **overrides: Any) -> M:
    """A detached copy of a row, every column included."""
    values = {attr.key: _portable(getattr(row, attr.key)) for attr in inspect(type(row)).column_attrs}
    return type(row)(**(values | overrides))


def _portable(value: Any) -> Any:
    # SQLite hands back naive datetimes; Sieve writes UTC, so say so before another database reads them
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
