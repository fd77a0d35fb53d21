"""`hybrid_search`: every enabled recall path under its own time budget, fused, hydrated, scored.

Degradation is reported, never raised: a path that runs out of time or fails adds
`<path>_timeout` / `<path>_error` to `degraded` and the remaining paths answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from sqlalchemy import select

from sieve.retrievers.fusion import fuse
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.types import Hit, RetrievalResult
from sieve.stores.embedding_cache import text_hash
from sieve.stores.metadata import Chunk, Document, DocumentStatus, KnowledgeBase
from sieve.stores.stack import Stack
from sieve.stores.types import ScoredChunk, SearchFilter

T = TypeVar("T")


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class HybridRetriever:
    """Implements the graph's `Retriever` over a `Stack`; the KB's stored profile applies per call."""

    def __init__(self, stack: Stack, max_workers: int = 4):
        self.stack = stack
        # embedded engines are synchronous: one bounded pool keeps slow calls from piling up threads
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sieve-retrieve")
        self._dense_loaded = False

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def load_profile(self, kb_id: str) -> RetrievalProfile:
        with self.stack.sessions() as session:
            stored = session.scalar(select(KnowledgeBase.profile).where(KnowledgeBase.id == kb_id))
        return RetrievalProfile.from_stored(stored)

    async def retrieve(
        self, query: str, flt: SearchFilter, k: int | None = None, profile: RetrievalProfile | None = None
    ) -> RetrievalResult:
        profile = profile or await self._run(self.load_profile, flt.kb)
        if "dense" in profile.paths and not self._dense_loaded:
            # loading and warming the model is start-up cost, not query time
            await self._run(lambda: (self.stack.vectors, self.stack.embedder.embed_queries(["warm-up"])))
            self._dense_loaded = True
        started = time.perf_counter()
        k = k or profile.top_k
        timings: dict[str, float] = {}
        degraded: list[str] = []
        if flt.allows_nothing() or not query.strip():
            return RetrievalResult([], degraded, {"total": _ms(started)})

        async def timed(name: str, work: Awaitable[T]) -> T | None:
            t0 = time.perf_counter()
            try:
                return await asyncio.wait_for(work, profile.path_budget_ms / 1000)
            except TimeoutError:
                degraded.append(f"{name}_timeout")
            except Exception:  # a backend down degrades to the remaining paths
                degraded.append(f"{name}_error")
            finally:
                timings[name] = _ms(t0)
            return None

        query_vector: np.ndarray | None = None

        async def dense() -> list[ScoredChunk]:
            nonlocal query_vector
            t0 = time.perf_counter()
            query_vector = (await self._run(self.stack.embedder.embed_queries, [query]))[0]
            timings["embed_query"] = _ms(t0)
            return await self._run(self.stack.vectors.search, query_vector, flt, profile.path_top_k)

        jobs: dict[str, Awaitable[list[ScoredChunk]]] = {}
        if "bm25" in profile.paths:
            jobs["bm25"] = self._run(self.stack.text.search, query, flt, profile.path_top_k)
        if "dense" in profile.paths:
            jobs["dense"] = dense()
        outcomes = await asyncio.gather(*(timed(name, job) for name, job in jobs.items()))
        per_path = {name: hits for name, hits in zip(jobs, outcomes) if hits is not None}

        t0 = time.perf_counter()
        fused = fuse(per_path, profile.fusion, profile.weights, profile.rrf_k)
        timings["fuse"] = _ms(t0)

        t0 = time.perf_counter()
        # hydrate more than k: chunks of documents not `ready` (mid-ingest) are dropped here
        hits = await self._run(self._hydrate, fused[: k * 2], flt, k)
        timings["hydrate"] = _ms(t0)
        if query_vector is not None:
            await self._run(self._score_relevance, hits, query_vector)
        timings["total"] = _ms(started)
        return RetrievalResult(hits, degraded, timings)

    def _hydrate(self, fused: list, flt: SearchFilter, k: int) -> list[Hit]:
        if not fused:
            return []
        with self.stack.sessions() as session:
            rows = session.execute(
                select(Chunk.id, Chunk.text, Chunk.ordinal, Document.id, Document.filename, Document.title,
                       Document.source_uri)
                .join(Document, Document.id == Chunk.doc_id)
                .where(
                    Chunk.id.in_([f.chunk_id for f in fused]),
                    Document.status == DocumentStatus.READY,
                    Document.tenant_id == flt.tenant,
                    Document.kb_id == flt.kb,
                )
            ).all()
        by_id = {r[0]: r for r in rows}
        hits: list[Hit] = []
        for f in fused:
            row = by_id.get(f.chunk_id)
            if row is None:
                continue
            _, text, ordinal, doc_id, filename, title, source_uri = row
            hits.append(
                Hit(
                    chunk_id=f.chunk_id,
                    doc_id=doc_id,
                    text=text,
                    score=f.score,
                    filename=filename,
                    title=title,
                    source_uri=source_uri,
                    ordinal=ordinal,
                    ranks=f.ranks,
                    path_scores=f.path_scores,
                )
            )
            if len(hits) == k:
                break
        return hits

    def _score_relevance(self, hits: list[Hit], query_vector: np.ndarray) -> None:
        """Cosine of query and passage, from the dense score or the cached passage vector."""
        missing = [h for h in hits if "dense" not in h.path_scores]
        cached = self.stack.embedding_cache.get_many([text_hash(h.text) for h in missing])
        for hit in hits:
            if "dense" in hit.path_scores:
                hit.relevance = hit.path_scores["dense"]
            else:
                vec = cached.get(text_hash(hit.text))
                hit.relevance = float(vec @ query_vector) if vec is not None else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
