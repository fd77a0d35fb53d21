"""Embedded dense vector index on Qdrant Edge (the in-process Qdrant engine), cosine distance.

Points carry chunk_id, doc_id, tenant and kb as payload with keyword indexes; every filter runs inside
the engine. Qdrant Edge never optimises on its own: new points sit in plain (brute-force, exact)
segments until `optimize()` builds HNSW for segments above the indexing threshold.

`optimize()` holds the GIL from start to end, so a serving process builds aside instead
(`build_aside`): a copy of the shard is optimised by another process while searches go on against the
live one (exact on new points, the previous graph on the rest), writes made meanwhile are replayed onto
the copy, and the copy becomes the live shard. The live shard is the folder `path` or its twin
`path.b`; the file `path.live` names the twin while it is the live one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import qdrant_edge as qe

from sieve.stores.types import EngineBusy, IndexedChunk, ScoredChunk, SearchFilter

log = logging.getLogger(__name__)
T = TypeVar("T")

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
_TWIN_SUFFIX = ".b"
_LIVE_SUFFIX = ".live"


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


def _live_folder(path: Path) -> Path:
    """The folder holding the live shard: `path`, unless `path.live` names its twin (a swapped-in build)."""
    marker = path.with_name(path.name + _LIVE_SUFFIX)
    if marker.is_file() and marker.read_text().strip() == path.name + _TWIN_SUFFIX:
        return path.with_name(path.name + _TWIN_SUFFIX)
    return path


def _mark_live(path: Path, folder: Path) -> None:
    """Records which folder is live; atomic, so a crash leaves either the old or the new answer."""
    marker = path.with_name(path.name + _LIVE_SUFFIX)
    if folder == path:
        marker.unlink(missing_ok=True)
        return
    staged = marker.with_name(marker.name + ".tmp")
    staged.write_text(folder.name)
    os.replace(staged, marker)


def _readers_params(shard: qe.EdgeShard, scope: qe.Filter) -> qe.SearchParams:
    """Search parameters for a filter with a caller's access list, by the share of points it keeps
    (the payload index's estimate: a fraction of a millisecond, no points read)."""
    total = shard.count(qe.CountRequest(exact=False))
    share = shard.count(qe.CountRequest(exact=False, filter=scope)) / max(1, total)
    if share < _PLAIN_FROM_SHARE:
        return _SEARCH_PARAMS
    return qe.SearchParams(hnsw_ef=round(_FILTERED_EF / share))


class _Closed(Exception):
    """The index was closed before its build could start."""


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
        # segments holding more vectors than this get a graph (the engine's threshold counts kilobytes)
        self._graph_from = indexing_threshold_kb * 1024 // (4 * dim)
        self._folder = _live_folder(path)
        self._config = config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=full_scan_threshold_kb),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold_kb),
        )
        try:
            if (self._folder / "edge_config.json").exists():
                # passing the config checks it against the stored shard (a different dim fails here)
                self._shard: qe.EdgeShard | None = qe.EdgeShard.load(str(self._folder), config)
            else:
                self._shard = qe.EdgeShard.create(str(self._folder), config)
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise EngineBusy(f"vector index {path} is already open in another process or object") from exc
            raise
        self._write_lock = threading.Lock()
        # while a build runs aside: the writes made since its copy was taken, replayed onto the copy
        self._journal: list[qe.UpdateOperation] | None = None
        self._builder: subprocess.Popen[bytes] | None = None
        self._built: tuple[int, int] | None = None  # (points, indexed) after the last build
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
                self._update(shard, qe.UpdateOperation.upsert_points(points))
            shard.flush()

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        with self._write_lock:
            shard = self._open()
            self._update(shard, qe.UpdateOperation.delete_points_by_filter(_scope(tenant, kb, doc_ids)))
            shard.flush()

    def set_acl(self, chunks: Sequence[IndexedChunk]) -> None:
        """The chunks' access lists changed: the payload is rewritten in place, per document."""
        by_doc = {(c.tenant, c.kb, c.doc_id): list(c.acl) for c in chunks}
        with self._write_lock:
            shard = self._open()
            for (tenant, kb, doc_id), acl in by_doc.items():
                self._update(shard, qe.UpdateOperation.set_payload_by_filter(_scope(tenant, kb, [doc_id]), {"acl": acl}))
            shard.flush()

    def _update(self, shard: qe.EdgeShard, operation: qe.UpdateOperation) -> None:
        """One write (the write lock held); kept for replay while a build runs aside."""
        shard.update(operation)
        if self._journal is not None:
            self._journal.append(operation)

    def search(self, vector: np.ndarray, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        """Cosine top-k, best first (score is the cosine similarity)."""
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise ValueError(f"expected a vector of {self.dim} floats, got shape {np.shape(vector)}")
        if k <= 0 or flt.allows_nothing():
            return []
        scope = _scope(flt.tenant, flt.kb, flt.doc_ids, flt.readers)

        def nearest(shard: qe.EdgeShard) -> list[qe.ScoredPoint]:
            return shard.query(
                qe.QueryRequest(
                    limit=k,
                    query=qe.Query.Nearest(query.tolist()),
                    filter=scope,
                    with_payload=_RETURNED_PAYLOAD,
                    params=_SEARCH_PARAMS if flt.readers is None else _readers_params(shard, scope),
                )
            )

        points = self._read(nearest)
        return [ScoredChunk(p.payload["chunk_id"], p.payload["doc_id"], float(p.score)) for p in points if p.payload]

    def count(self, flt: SearchFilter) -> int:
        if flt.allows_nothing():
            return 0
        request = qe.CountRequest(exact=True, filter=_scope(flt.tenant, flt.kb, flt.doc_ids, flt.readers))
        return self._read(lambda shard: shard.count(request))

    def _read(self, read: Callable[[qe.EdgeShard], T]) -> T:
        """`read` on the live shard; searches take no lock, so one that picked up the shard a finished build
        just replaced (and closed) reads again from its successor."""
        shard = self._open()
        try:
            return read(shard)
        except Exception:
            if self._shard is shard or self._shard is None:
                raise
            return read(self._open())

    def index_state(self) -> dict[str, int | bool]:
        """Points, how many of them a graph indexes (the rest are searched exactly), whether a build runs."""
        info = self._open().info()
        return {"points": info.points_count, "indexed": info.indexed_vectors_count,
                "building": self._journal is not None}

    def needs_build(self) -> bool:
        """Enough points outside any graph to make one (a smaller remainder is cheap to search exactly),
        and the shard changed since the last build (one that indexed nothing more is not retried)."""
        info = self._open().info()
        state = (info.points_count, info.indexed_vectors_count)
        return info.points_count - info.indexed_vectors_count >= self._graph_from and state != self._built

    def build_aside(self, niceness: int = 10) -> bool:
        """Builds the graphs in another process at `niceness` and swaps the result in; searches and writes
        go on meanwhile (writes wait only while the shard is copied and while the copy is swapped in).
        Returns whether the build was swapped in (False: the index was closed meanwhile)."""
        folder = self.begin_build()
        try:
            with self._write_lock:
                if self._shard is None:
                    raise _Closed
                self._builder = subprocess.Popen(
                    [sys.executable, "-m", "sieve.stores.qdrant_edge_optimize", str(folder), str(niceness)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, stderr = self._builder.communicate()
            if self._builder.returncode:
                raise RuntimeError(f"building {folder} failed: {stderr.decode(errors='replace')[-2000:]}")
            return self.finish_build(folder)
        except _Closed:
            return False
        except BaseException:
            if self._shard is None:  # closed meanwhile: close() stopped the builder
                return False
            raise
        finally:
            self._builder = None
            self._abandon(folder)

    def begin_build(self) -> Path:
        """Copies the live shard to its twin folder and starts keeping writes for replay; returns the twin."""
        with self._write_lock:
            shard = self._open()
            if self._journal is not None:
                raise RuntimeError(f"a build of {self.path} is already running")
            twin = self._twin()
            shutil.rmtree(twin, ignore_errors=True)  # what a crashed build or a replaced shard left
            shard.flush()
            shutil.copytree(self._folder, twin)
            self._journal = []
            return twin

    def finish_build(self, folder: Path) -> bool:
        """Replays the writes made since `begin_build` onto the built copy in `folder` and makes it the live
        shard. False when the index was closed meanwhile (the copy is then left to be removed)."""
        with self._write_lock:
            old, journal = self._shard, self._journal
            if old is None or journal is None:
                return False
            built = qe.EdgeShard.load(str(folder), self._config)
            for operation in journal:
                built.update(operation)
            built.flush()
            _mark_live(self.path, folder)
            previous = self._folder
            self._shard, self._folder, self._journal = built, folder, None
            info = built.info()
            self._built = (info.points_count, info.indexed_vectors_count)
            old.close()
            shutil.rmtree(previous, ignore_errors=True)
            return True

    def _abandon(self, folder: Path) -> None:
        """Stops keeping writes for a build that will not be swapped in, and removes its copy."""
        with self._write_lock:
            if self._folder != folder:
                self._journal = None
                shutil.rmtree(folder, ignore_errors=True)

    def _twin(self) -> Path:
        return self.path.with_name(self.path.name + _TWIN_SUFFIX) if self._folder == self.path else self.path

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
        """Flush and release the shard (and its WAL lock); stops a build running aside; safe to call twice."""
        with self._write_lock:
            if self._builder is not None:
                self._builder.kill()
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None

    def _open(self) -> qe.EdgeShard:
        shard = self._shard
        if shard is None:
            raise RuntimeError(f"vector index {self.path} is closed")
        return shard
