"""The production vector index: a Qdrant server or cluster through qdrant-client.

Dense cosine vectors, and optionally a BM25 sparse vector (term frequencies weighted client-side,
IDF applied by the server) so that one request does server-side hybrid search with RRF fusion.
Every read and delete carries the tenant and knowledge-base conditions, whatever the layout.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from qdrant_client import AsyncQdrantClient, QdrantClient
from qdrant_client import models as qm

from sieve.errors import ConfigurationError
from sieve.stores.analysis import analyze
from sieve.stores.types import IndexedChunk, ScoredChunk, SearchFilter

if TYPE_CHECKING:
    from sieve.settings import Settings

log = logging.getLogger(__name__)

Layout = Literal["per_kb", "per_tenant", "shared"]

DENSE = "dense"
SPARSE = "bm25"
_PAYLOAD_OUT = ["chunk_id", "doc_id"]
_UPSERT_BATCH = 256
# fixed namespace: the same chunk maps to the same point id in every process, so re-adding overwrites
_POINT_NAMESPACE = uuid.UUID("6f1d7c52-3a0e-4d55-9a51-0b9a54c1e8d2")
_BM25_K1 = 1.2
_BM25_B = 0.75


def collection_name(prefix: str, layout: Layout, tenant: str, kb: str) -> str:
    """The collection holding (tenant, kb): readable, and unique because of the digest of the raw ids."""
    if layout == "shared":
        return f"{prefix}chunks"
    parts = (tenant,) if layout == "per_tenant" else (tenant, kb)
    slug = ".".join(re.sub(r"[^A-Za-z0-9_-]+", "_", p)[:40] for p in parts)
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=5).hexdigest()
    return f"{prefix}{slug}-{digest}"


def point_id(chunk: IndexedChunk) -> str:
    # chunk ids are only unique inside a knowledge base; shared collections hold many
    return str(uuid.uuid5(_POINT_NAMESPACE, "\0".join((chunk.tenant, chunk.kb, chunk.chunk_id))))


def search_filter(flt: SearchFilter) -> qm.Filter:
    """Tenant and knowledge base must match; an allow-list restricts doc_id to its members."""
    must: list[qm.Condition] = [
        qm.FieldCondition(key="tenant", match=qm.MatchValue(value=flt.tenant)),
        qm.FieldCondition(key="kb", match=qm.MatchValue(value=flt.kb)),
    ]
    if flt.doc_ids is not None:
        must.append(qm.FieldCondition(key="doc_id", match=qm.MatchAny(any=sorted(flt.doc_ids))))
    if flt.readers is not None:
        must.append(qm.FieldCondition(key="acl", match=qm.MatchAny(any=sorted(flt.readers))))
    return qm.Filter(must=must)


def payload_indexes(layout: Layout) -> dict[str, qm.KeywordIndexParams]:
    """Keyword indexes on the filtered fields. `is_tenant` (Qdrant >= 1.11) goes on the field that
    partitions the collection, so the server co-locates each partition's points."""
    partition = {"shared": "tenant", "per_tenant": "kb", "per_kb": None}[layout]
    return {
        field: qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True if field == partition else None)
        for field in ("tenant", "kb", "doc_id", "acl")
    }


def bm25_document_vector(text: str, avg_len: float) -> qm.SparseVector:
    """BM25's term-frequency part; the collection's IDF modifier supplies the rest at query time."""
    counts = _term_counts(text)
    norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * sum(counts.values()) / avg_len)
    return _sparse({i: tf * (_BM25_K1 + 1) / (tf + norm) for i, tf in counts.items()})


def bm25_query_vector(text: str) -> qm.SparseVector:
    return _sparse({i: 1.0 for i in _term_counts(text)})


def _term_counts(text: str) -> Counter[int]:
    # crc32, not hash(): term ids must agree across processes and restarts
    return Counter(zlib.crc32(token.encode()) for token in analyze(text))


def _sparse(weights: dict[int, float]) -> qm.SparseVector:
    indices = sorted(weights)
    return qm.SparseVector(indices=indices, values=[weights[i] for i in indices])


def _dense(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()


def _hits(response: qm.QueryResponse) -> list[ScoredChunk]:
    return [
        ScoredChunk(chunk_id=p.payload["chunk_id"], doc_id=p.payload["doc_id"], score=float(p.score))
        for p in response.points
        if p.payload
    ]


class QdrantServerVectorIndex:
    """`VectorIndex` on a Qdrant server, with async twins (`a*`) for the serving path.

    Collections are created on first write: one per knowledge base, per tenant, or one shared,
    as `layout` says. qdrant-client's local mode (`QdrantClient(":memory:")`) speaks the same API
    and is this adapter's test double; it ignores payload indexes and has no snapshots.
    """

    def __init__(
        self,
        client: QdrantClient,
        dim: int,
        *,
        aclient: AsyncQdrantClient | None = None,
        layout: Layout = "per_kb",
        prefix: str = "sieve_",
        bm25: bool = False,
        bm25_avg_len: float = 256.0,
    ):
        self.client = client
        self.aclient = aclient
        self.dim = dim
        self.layout: Layout = layout
        self.prefix = prefix
        self.bm25 = bm25
        self.bm25_avg_len = bm25_avg_len
        # collections known to exist, per client (local-mode sync and async clients are separate stores)
        self._ready: set[str] = set()
        self._aready: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, space: str, dim: int) -> QdrantServerVectorIndex:
        """`space` names the embedding model: switching embedders never mixes vector spaces.
        A server URL wins; `qdrant_path` opens local mode, which locks its folder, so it gets no async twin."""
        aclient: AsyncQdrantClient | None = None
        if settings.qdrant_url:
            auth = {"url": settings.qdrant_url, "api_key": settings.qdrant_api_key}
            client, aclient = QdrantClient(**auth), AsyncQdrantClient(**auth)
        elif settings.qdrant_path is not None:
            client = QdrantClient(path=str(settings.qdrant_path))
        else:
            raise ConfigurationError("vector_backend=qdrant needs SIEVE_QDRANT_URL (or SIEVE_QDRANT_PATH for local mode)")
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", space)
        return cls(
            client,
            dim,
            aclient=aclient,
            layout=settings.qdrant_layout,
            prefix=f"{settings.qdrant_collection_prefix}{slug}-{dim}_",
            bm25=settings.qdrant_bm25,
        )

    def collection(self, tenant: str, kb: str) -> str:
        return collection_name(self.prefix, self.layout, tenant, kb)

    def collection_config(self) -> dict[str, object]:
        """Arguments of `create_collection` for every collection of this index."""
        config: dict[str, object] = {
            "vectors_config": {DENSE: qm.VectorParams(size=self.dim, distance=qm.Distance.COSINE)}
        }
        if self.bm25:
            config["sparse_vectors_config"] = {SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)}
        return config

    def points(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray) -> dict[str, list[qm.PointStruct]]:
        """The points to upsert, grouped by collection."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dim):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
        grouped: dict[str, list[qm.PointStruct]] = defaultdict(list)
        for chunk, vector in zip(chunks, vectors, strict=True):
            named: dict[str, object] = {DENSE: vector.tolist()}
            if self.bm25:
                named[SPARSE] = bm25_document_vector(chunk.text, self.bm25_avg_len)
            payload = {"chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "tenant": chunk.tenant, "kb": chunk.kb,
                       "acl": list(chunk.acl)}
            grouped[self.collection(chunk.tenant, chunk.kb)].append(
                qm.PointStruct(id=point_id(chunk), vector=named, payload=payload)
            )
        return grouped

    def dense_query(self, vector: np.ndarray, flt: SearchFilter, k: int) -> dict[str, object]:
        return {"query": _dense(vector), "using": DENSE, "query_filter": search_filter(flt), "limit": k}

    def hybrid_query(self, query_text: str, vector: np.ndarray, flt: SearchFilter, k: int) -> dict[str, object]:
        if not self.bm25:
            raise ValueError("hybrid search needs an index built with bm25=True")
        # each candidate list is filtered inside the engine, so RRF only ever fuses allowed points
        condition = search_filter(flt)
        return {
            "prefetch": [
                qm.Prefetch(query=_dense(vector), using=DENSE, filter=condition, limit=k),
                qm.Prefetch(query=bm25_query_vector(query_text), using=SPARSE, filter=condition, limit=k),
            ],
            "query": qm.FusionQuery(fusion=qm.Fusion.RRF),
            "limit": k,
        }

    # --- sync (VectorIndex) ---

    def add(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray) -> None:
        for name, points in self.points(chunks, vectors).items():
            self._ensure(name)
            for start in range(0, len(points), _UPSERT_BATCH):
                self.client.upsert(name, points[start : start + _UPSERT_BATCH], wait=True)

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        name = self.collection(tenant, kb)
        if doc_ids and self._exists(name):
            selector = qm.FilterSelector(filter=search_filter(SearchFilter(tenant, kb, frozenset(doc_ids))))
            self.client.delete(name, points_selector=selector, wait=True)

    def set_acl(self, chunks: Sequence[IndexedChunk]) -> None:
        """The chunks' access lists changed: the payload is rewritten in place, per document."""
        for (tenant, kb, doc_id), acl in {(c.tenant, c.kb, c.doc_id): list(c.acl) for c in chunks}.items():
            name = self.collection(tenant, kb)
            if self._exists(name):
                selector = qm.FilterSelector(filter=search_filter(SearchFilter(tenant, kb, frozenset([doc_id]))))
                self.client.set_payload(name, payload={"acl": acl}, points=selector, wait=True)

    def search(self, vector: np.ndarray, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        return self._query(flt, self.dense_query(vector, flt, k))

    def search_hybrid(self, query_text: str, vector: np.ndarray, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        """Dense and BM25 candidates fused by RRF on the server."""
        return self._query(flt, self.hybrid_query(query_text, vector, flt, k))

    def count(self, flt: SearchFilter) -> int:
        name = self.collection(flt.tenant, flt.kb)
        if flt.allows_nothing() or not self._exists(name):
            return 0
        return self.client.count(name, count_filter=search_filter(flt), exact=True).count

    def health(self) -> bool:
        try:
            self.client.get_collections()
        except Exception:  # any transport or server error means "not serving"
            log.warning("Qdrant health check failed", exc_info=True)
            return False
        return True

    def create_snapshot(self, tenant: str, kb: str) -> str:
        """Snapshot of the collection holding this knowledge base; returns the snapshot's name."""
        snapshot = self.client.create_snapshot(self.collection(tenant, kb), wait=True)
        if snapshot is None:
            raise RuntimeError("Qdrant returned no snapshot description")
        return snapshot.name

    def close(self) -> None:
        self.client.close()

    def _query(self, flt: SearchFilter, request: dict[str, object]) -> list[ScoredChunk]:
        name = self.collection(flt.tenant, flt.kb)
        if flt.allows_nothing() or not self._exists(name):
            return []
        return _hits(self.client.query_points(name, with_payload=_PAYLOAD_OUT, **request))

    def _exists(self, name: str) -> bool:
        if name not in self._ready and self.client.collection_exists(name):
            self._ready.add(name)
        return name in self._ready

    def _ensure(self, name: str) -> None:
        if self._exists(name):
            return
        try:
            self.client.create_collection(name, **self.collection_config())
        except Exception:
            # another worker may have created it first; anything else is a real failure
            if not self.client.collection_exists(name):
                raise
        for field, schema in payload_indexes(self.layout).items():
            self.client.create_payload_index(name, field, field_schema=schema, wait=True)
        self._ready.add(name)

    # --- async twins for the serving path ---

    async def aadd(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray) -> None:
        aclient = self._async()
        for name, points in self.points(chunks, vectors).items():
            await self._aensure(name)
            for start in range(0, len(points), _UPSERT_BATCH):
                await aclient.upsert(name, points[start : start + _UPSERT_BATCH], wait=True)

    async def adelete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        name = self.collection(tenant, kb)
        if doc_ids and await self._aexists(name):
            selector = qm.FilterSelector(filter=search_filter(SearchFilter(tenant, kb, frozenset(doc_ids))))
            await self._async().delete(name, points_selector=selector, wait=True)

    async def asearch(self, vector: np.ndarray, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        return await self._aquery(flt, self.dense_query(vector, flt, k))

    async def asearch_hybrid(
        self, query_text: str, vector: np.ndarray, flt: SearchFilter, k: int
    ) -> list[ScoredChunk]:
        return await self._aquery(flt, self.hybrid_query(query_text, vector, flt, k))

    async def acount(self, flt: SearchFilter) -> int:
        name = self.collection(flt.tenant, flt.kb)
        if flt.allows_nothing() or not await self._aexists(name):
            return 0
        return (await self._async().count(name, count_filter=search_filter(flt), exact=True)).count

    async def aclose(self) -> None:
        if self.aclient is not None:
            await self.aclient.close()

    def _async(self) -> AsyncQdrantClient:
        if self.aclient is None:
            raise RuntimeError("this index was built without an AsyncQdrantClient")
        return self.aclient

    async def _aquery(self, flt: SearchFilter, request: dict[str, object]) -> list[ScoredChunk]:
        name = self.collection(flt.tenant, flt.kb)
        if flt.allows_nothing() or not await self._aexists(name):
            return []
        return _hits(await self._async().query_points(name, with_payload=_PAYLOAD_OUT, **request))

    async def _aexists(self, name: str) -> bool:
        if name not in self._aready and await self._async().collection_exists(name):
            self._aready.add(name)
        return name in self._aready

    async def _aensure(self, name: str) -> None:
        if await self._aexists(name):
            return
        aclient = self._async()
        try:
            await aclient.create_collection(name, **self.collection_config())
        except Exception:
            if not await aclient.collection_exists(name):
                raise
        for field, schema in payload_indexes(self.layout).items():
            await aclient.create_payload_index(name, field, field_schema=schema, wait=True)
        self._aready.add(name)
