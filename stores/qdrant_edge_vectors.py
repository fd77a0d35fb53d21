"""Embedded dense vector index on Qdrant Edge (the in-process Qdrant engine), cosine distance.

Points carry chunk_id, doc_id, tenant and kb as payload with keyword indexes; every filter runs inside
the engine. Qdrant Edge never optimises on its own: new points sit in plain (brute-force, exact)
segments until `optimize()` builds HNSW for segments above the indexing threshold.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import qdrant_edge as qe

from sieve.stores.types import EngineBusy, IndexedChunk, ScoredChunk, SearchFilter

log = logging.getLogger(__name__)

# Fixed namespace: a chunk id maps to the same point id in every process and every release.
_CHUNK_NAMESPACE = uuid.UUID("6d1f3c52-8a43-4f6e-9b0e-2c7a51e0d9b4")
_HEX_UUID = re.compile(r"[0-9a-f]{32}")
_PAYLOAD_INDEXES = {
    # is_tenant lets the optimiser lay segments out by tenant, as Qdrant's multitenancy guide advises
    "tenant": qe.KeywordIndexParams(is_tenant=True),
    "kb": qe.KeywordIndexParams(),
    # allow-lists are small: they are served by the keyword index, never by a payload-aware graph
    "doc_id": qe.KeywordIndexParams(enable_hnsw=False),
    # a caller's access-list entries match a large share of the tenant: the graph may use this index
    "acl": qe.KeywordIndexParams(),
}
_RETURNED_PAYLOAD = ["chunk_id", "doc_id"]
# Our filter is an AND (tenant, kb, maybe doc ids) and Qdrant's payload-aware graph links only cover
# single field values: without ACORN a tenant holding a quarter of a graph-indexed segment got top-10
# recall of 0.5-0.9, some queries finding 2 far points. ACORN (used only when the filter keeps under
# 40% of the points) brought it to 1.0 for about 0.2 ms more a query.
_SEARCH_PARAMS = qe.SearchParams(acorn=qe.AcornSearchParams(enable=True))
# A caller's access list keeps ~30% of a tenant in the bench (documents readable by the whole tenant
# plus its groups' own), where ACORN cost an order of magnitude more than a tenant-wide search. Plain
# HNSW with ef raised as the kept share falls (the walk skips the rest) matched the tenant-wide
# recall@10 from a quarter of the points up (bench_acl.py, e5 vectors: 0.992 vs 0.991, ACORN 0.9995);
# below that plain HNSW falls apart and ACORN stays.
_PLAIN_FROM_SHARE = 0.25
_FILTERED_EF = 120
_UPSERT_BATCH = 1024


def point_id(chunk_id: str) -> uuid.UUID:
    """The chunk id itself when it is a 32-hex UUID (our metadata ids are), else a stable uuid5."""
    if _HEX_UUID.fullmatch(chunk_id):
        return uuid.UUID(hex=chunk_id)
    return uuid.uuid5(_CHUNK_NAMESPACE, chunk_id)


def _scope(
    tenant: str, kb: str, doc_ids: Collection[str] | None, readers: Collection[str] | None = None
) -> qe.Filter:
    must: list[qe.ConditionType] = [  # a stub-only alias
        qe.FieldCondition(key="tenant", match=qe.MatchValue(tenant)),
        qe.FieldCondition(key="kb", match=qe.MatchValue(kb)),
    ]
    if doc_ids is not None:
        must.append(qe.FieldCondition(key="doc_id", match=qe.MatchAny(sorted(doc_ids))))
    if readers is not None:
        must.append(qe.FieldCondition(key="acl", match=qe.MatchAny(sorted(readers))))
    return qe.Filter(must=must)


def _readers_params(shard: qe.EdgeShard, scope: qe.Filter) -> qe.SearchParams:
    """Search parameters for a filter with a caller's access list, by the share of points it keeps
    (the payload index's estimate: a fraction of a millisecond, no points read)."""
    total = shard.count(qe.CountRequest(exact=False))
    share = shard.count(qe.CountRequest(exact=False, filter=scope)) / max(1, total)
    if share < _PLAIN_FROM_SHARE:
        return _SEARCH_PARAMS
    return qe.SearchParams(hnsw_ef=round(_FILTERED_EF / share))


class QdrantEdgeVectorIndex:
    """`VectorIndex` over one Qdrant Edge shard folder; one instance per folder per process.

    The shard locks its WAL: a second opener of the same folder (in this process or another) gets a
    RuntimeError. Writes are serialised. The binding holds the GIL inside every call, so concurrent
    searches are safe but take turns; `optimize()` in particular stops all Python threads while it runs.

    `indexing_threshold_kb`: a segment whose vectors exceed this gets an HNSW graph on `optimize()`.
    `full_scan_threshold_kb`: a search (or filtered subset) smaller than this is answered exactly.
    Both default to Qdrant's own defaults (about 6,600 vectors of 384 floats).
    """

    def __init__(
        self,
        path: Path,
        dim: int,
        *,
        indexing_threshold_kb: int = 10_000,
        full_scan_threshold_kb: int = 10_000,
    ):
        self.path = path
        self.dim = dim
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=full_scan_threshold_kb),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold_kb),
        )
        try:
            if (path / "edge_config.json").exists():
                # passing the config checks it against the stored shard (a different dim fails here)
                self._shard: qe.EdgeShard | None = qe.EdgeShard.load(str(path), config)
            else:
                self._shard = qe.EdgeShard.create(str(path), config)
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise EngineBusy(f"vector index {path} is already open in another process or object") from exc
            raise
        self._write_lock = threading.Lock()
        indexed = self._shard.info().payload_schema
        for field, params in _PAYLOAD_INDEXES.items():
            if field not in indexed:
                self._shard.update(qe.UpdateOperation.create_field_index(field, params))
        self._shard.flush()

    def add(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray) -> None:
        """Upsert one vector per chunk (row i belongs to chunk i); durable when this returns."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.shape != (len(chunks), self.dim):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {matrix.shape}")
        if not chunks:
            return
        with self._write_lock:
            shard = self._open()
            for start in range(0, len(chunks), _UPSERT_BATCH):
                rows = matrix[start : start + _UPSERT_BATCH].tolist()
                points = [
                    qe.Point(
                        point_id(c.chunk_id),
                        row,
                        {"chunk_id": c.chunk_id, "doc_id": c.doc_id, "tenant": c.tenant, "kb": c.kb, "acl": list(c.acl)},
                    )
                    for c, row in zip(chunks[start : start + _UPSERT_BATCH], rows, strict=True)
                ]
                shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        with self._write_lock:
            shard = self._open()
            shard.update(qe.UpdateOperation.delete_points_by_filter(_scope(tenant, kb, doc_ids)))
            shard.flush()

    def set_acl(self, chunks: Sequence[IndexedChunk]) -> None:
        """The chunks' access lists changed: the payload is rewritten in place, per document."""
        by_doc = {(c.tenant, c.kb, c.doc_id): list(c.acl) for c in chunks}
        with self._write_lock:
            shard = self._open()
            for (tenant, kb, doc_id), acl in by_doc.items():
                shard.update(qe.UpdateOperation.set_payload_by_filter(_scope(tenant, kb, [doc_id]), {"acl": acl}))
            shard.flush()

    def search(self, vector: np.ndarray, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        """Cosine top-k, best first (score is the cosine similarity)."""
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise ValueError(f"expected a vector of {self.dim} floats, got shape {np.shape(vector)}")
        if k <= 0 or flt.allows_nothing():
            return []
        shard = self._open()
        scope = _scope(flt.tenant, flt.kb, flt.doc_ids, flt.readers)
        points = shard.query(
            qe.QueryRequest(
                limit=k,
                query=qe.Query.Nearest(query.tolist()),
                filter=scope,
                with_payload=_RETURNED_PAYLOAD,
                params=_SEARCH_PARAMS if flt.readers is None else _readers_params(shard, scope),
            )
        )
        return [ScoredChunk(p.payload["chunk_id"], p.payload["doc_id"], float(p.score)) for p in points if p.payload]

    def count(self, flt: SearchFilter) -> int:
        if flt.allows_nothing():
            return 0
        return self._open().count(qe.CountRequest(exact=True, filter=_scope(flt.tenant, flt.kb, flt.doc_ids, flt.readers)))

    def optimize(self) -> bool:
        """Build HNSW graphs and merge segments; blocking, and it holds the GIL throughout.

        100k vectors of 384 floats took 45 s (clustered) to 3 min (iid noise) on two busy cores: run it
        after a bulk ingest or from a maintenance command, never on a serving event loop. Returns
        whether anything changed.
        """
        with self._write_lock:
            shard = self._open()
            changed = shard.optimize()
            shard.flush()
            return changed

    def health(self) -> bool:
        if self._shard is None:
            return False
        try:
            self._shard.info()
        except Exception:
            log.warning("vector index health check failed", exc_info=True)
            return False
        return True

    def close(self) -> None:
        """Flush and release the shard (and its WAL lock); safe to call twice."""
        with self._write_lock:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None

    def _open(self) -> qe.EdgeShard:
        shard = self._shard
        if shard is None:
            raise RuntimeError(f"vector index {self.path} is closed")
        return shard
