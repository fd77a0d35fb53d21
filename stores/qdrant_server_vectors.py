"""The production vector index: a Qdrant server or cluster through qdrant-client.

Dense cosine vectors; BM25 is the text index's job, so collections hold no sparse vectors.
Every read and delete carries the tenant and knowledge-base conditions, whatever the layout.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from more_itertools import chunked
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from sieve.errors import ConfigurationError
from sieve.stores.types import IndexedChunk, ScoredChunk, SearchFilter

if TYPE_CHECKING:
    from sieve.settings import Settings

log = logging.getLogger(__name__)

Layout = Literal["per_kb", "per_tenant", "shared"]

DENSE = "dense"
_PAYLOAD_OUT = ["chunk_id", "doc_id"]
_UPSERT_BATCH = 256
# fixed namespace: the same chunk maps to the same point id in every process, so re-adding overwrites
_POINT_NAMESPACE = uuid.UUID("6f1d7c52-3a0e-4d55-9a51-0b9a54c1e8d2")


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


def _dense(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()


def _hits(response: qm.QueryResponse) -> list[ScoredChunk]:
    return [
        ScoredChunk(chunk_id=p.payload["chunk_id"], doc_id=p.payload["doc_id"], score=float(p.score))
        for p in response.points
        if p.payload
    ]


class QdrantServerVectorIndex:
    """`VectorIndex` on a Qdrant server (the serving path calls it off the event loop, like every index).

    Collections are created on first write: one per knowledge base, per tenant, or one shared,
    as `layout` says. qdrant-client's local mode (`QdrantClient(":memory:")`) speaks the same API
    and is this adapter's test double; it ignores payload indexes and has no snapshots.
    """

    def __init__(
        self,
        client: QdrantClient,
        dim: int,
        *,
        layout: Layout = "per_kb",
        prefix: str = "sieve_",
    ):
        self.client = client
        self.dim = dim
        self.layout: Layout = layout
        self.prefix = prefix
        # collections known to exist
        self._ready: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, space: str, dim: int) -> QdrantServerVectorIndex:
        """`space` names the embedding model: switching embedders never mixes vector spaces.
        A server URL wins; `qdrant_path` opens local mode."""
        if settings.qdrant_url:
            client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
        elif settings.qdrant_path is not None:
            client = QdrantClient(path=str(settings.qdrant_path))
        else:
            raise ConfigurationError("vector_backend=qdrant needs SIEVE_QDRANT_URL (or SIEVE_QDRANT_PATH for local mode)")
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", space)
        return cls(
            client,
            dim,
            layout=settings.qdrant_layout,
            prefix=f"{settings.qdrant_collection_prefix}{slug}-{dim}_",
        )

    def collection(self, tenant: str, kb: str) -> str:
        return collection_name(self.prefix, self.layout, tenant, kb)

    def collection_config(self) -> dict[str, Any]:
        """Arguments of `create_collection` for every collection of this index."""
        return {"vectors_config": {DENSE: qm.VectorParams(size=self.dim, distance=qm.Distance.COSINE)}}

    def points(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray) -> dict[str, list[qm.PointStruct]]:
        """The points to upsert, grouped by collection."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dim):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
        grouped: dict[str, list[qm.PointStruct]] = defaultdict(list)
        for chunk, vector in zip(chunks, vectors, strict=True):
            named: dict[str, object] = {DENSE: vector.tolist()}
            payload = {"chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "tenant": chunk.tenant, "kb": chunk.kb,
                       "acl": list(chunk.acl)}
            grouped[self.collection(chunk.tenant, chunk.kb)].append(
                qm.PointStruct(id=point_id(chunk), vector=named, payload=payload)
            )
        return grouped

    def dense_query(self, vector: np.ndarray, flt: SearchFilter, k: int) -> dict[str, Any]:
        return {"query": _dense(vector), "using": DENSE, "query_filter": search_filter(flt), "limit": k}

    def add(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray) -> None:
        for name, points in self.points(chunks, vectors).items():
            self._ensure(name)
            for batch in chunked(points, _UPSERT_BATCH):
                self.client.upsert(name, batch, wait=True)

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

    def _query(self, flt: SearchFilter, request: dict[str, Any]) -> list[ScoredChunk]:
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
