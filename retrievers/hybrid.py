"""`hybrid_search`: every enabled recall path under its own time budget, fused, reranked, hydrated, scored.

The degradation ladder, each step reported in `degraded`, never raised:
- every stage (query embedding, each path, the reranker) runs under its own budget, and never
  past what is left of the profile's `total_budget_ms`;
- embedder or dense timeout/error -> the other paths (BM25) answer: `embedder_timeout`, `dense_timeout`;
- a path's backend down -> the remaining paths: `<path>_error`;
- reranker timeout/error -> fused order with cosine relevance: `rerank_timeout` / `rerank_error`.
The embedded engines are synchronous and run in threads; a timed-out thread keeps running, so each
component has its own small pool (a stuck engine cannot starve the others) and a late result is
dropped with its cancelled future.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from sqlalchemy import func, select

from sieve.degraded import Degraded
from sieve.models.guarded_embedder import BreakerPolicy, EmbedderUnavailable, GuardedEmbedder
from sieve.retrievers.crosslingual import SCRIPT_SAMPLE, language_aligned, other_script, topical_unseen
from sieve.retrievers.faults import Faults
from sieve.retrievers.fusion import fuse
from sieve.retrievers.graph_path import graph_search
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.rerank import LocalReranker, Reranker, RerankerKind, build_reranker, reranked_order
from sieve.retrievers.types import Hit, RetrievalResult
from sieve.stores.acl import document_scope
from sieve.stores.embedding_cache import text_hash
from sieve.stores.metadata import Chunk, Document, DocumentStatus, KnowledgeBase
from sieve.stores.stack import Stack
from sieve.stores.types import ScoredChunk, SearchFilter

T = TypeVar("T")
logger = logging.getLogger(__name__)


def query_embedder(stack: Stack, faults: Faults) -> GuardedEmbedder:
    """The stack's embedder as queries use it: `SIEVE_FAULTS`' embedder fault applied, behind a breaker."""
    faulty = faults.wrap("embedder", stack.embedder, ("embed_queries", "embed_passages"))
    return GuardedEmbedder(faulty, BreakerPolicy(cooldown_s=stack.settings.embedder_cooldown_s))


class _NotRun(Exception):
    """A recall path that did not run: a component it needs already reported why (the embedder's open breaker)."""


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class HybridRetriever:
    """Implements the graph's `Retriever` over a `Stack`; the KB's stored profile applies per call.

    `SIEVE_FAULTS` (settings.faults) wraps the components this retriever calls, never the engines.
    """

    def __init__(self, stack: Stack, lane_workers: int = 2, faults: Faults | None = None):
        # its paths open the embedded engines, inside their lanes where a failure reads as a degraded
        # path: on a home another process serves, fail now with the way round it instead
        stack.check_owner()
        self.stack = stack
        self.faults = faults if faults is not None else Faults.parse(stack.settings.faults)
        # the query-time embedder, owned here and shared with the graph's other nodes (one breaker for all)
        self.embedder = query_embedder(stack, self.faults)
        self._lane_workers = lane_workers
        self._lanes: dict[str, ThreadPoolExecutor] = {}
        self._warm: set[str] = set()
        # concurrent first queries wait for one warm-up instead of each paying it inside its budget
        self._warming = asyncio.Lock()
        self._rerankers: dict[RerankerKind, Reranker] = {}
        # each reranker kind's latest outcome (`ok`, `error`, `timeout`), for readiness reports
        self.reranker_health: dict[str, str] = {}

    def _lane(self, name: str) -> ThreadPoolExecutor:
        # one bounded pool per component: timed-out calls of a stuck engine queue behind it only
        if name not in self._lanes:
            self._lanes[name] = ThreadPoolExecutor(self._lane_workers, thread_name_prefix=f"sieve-{name}")
        return self._lanes[name]

    async def _run(self, fn: Callable[..., T], *args: object, lane: str = "store") -> T:
        return await asyncio.get_running_loop().run_in_executor(self._lane(lane), fn, *args)

    def load_profile(self, kb_id: str) -> RetrievalProfile:
        with self.stack.sessions() as session:
            stored = session.scalar(select(KnowledgeBase.profile).where(KnowledgeBase.id == kb_id))
        return RetrievalProfile.from_stored(stored)

    async def _reranker(self, kind: RerankerKind) -> Reranker | None:
        if kind is RerankerKind.NONE:
            return None
        if kind not in self._rerankers:
            # loading a model is start-up cost, outside the query's budget
            built = await self._run(build_reranker, kind, self.stack.settings, self.embedder, self.stack.embedding_cache)
            if isinstance(built, LocalReranker):
                await built.ascore("warm-up", ["warm-up"])
            self._rerankers[kind] = built
        return self.faults.wrap("reranker", self._rerankers[kind], ("score", "ascore"))

    @property
    def image_ready(self) -> bool:
        return self.stack.settings.image_embedder_model_path is not None

    async def warm_up(self, paths: Collection[str]) -> None:
        """Open each path's engine and load its model once: start-up cost, never counted in a query's budget."""
        async with self._warming:
            if "dense" in paths and "dense" not in self._warm:
                # an embedder failing now opens the breaker and the dense path reports it under its budget;
                # the vector index opens once the embedder answers (its folder is named by the embedder's width)
                self._warm.add("dense")
                with contextlib.suppress(EmbedderUnavailable):
                    await self._run(self.embedder.embed_queries, ["warm-up"])
                    await self._run(lambda: self.stack.vectors)
            if "bm25" in paths and "bm25" not in self._warm:
                # tantivy creates its folder, opens its index and loads its searcher on the first search; a
                # text backend that cannot open is reported by the path itself (`bm25_error`)
                with contextlib.suppress(Exception):
                    await self._run(lambda: self.stack.text.search("warm-up", SearchFilter("", ""), 1), lane="bm25")
                    self._warm.add("bm25")
            if "image" in paths and self.image_ready and "image" not in self._warm:
                # a CLIP model that cannot load is reported by the path itself (`image_error`)
                with contextlib.suppress(Exception):
                    await self._run(lambda: self.stack.image_embedder.embed_texts(["warm-up"]), lane="image")
                    await self._run(lambda: self.stack.image_vectors, lane="image")
                    self._warm.add("image")
            if "graph" in paths and "graph" not in self._warm:
                # a graph backend that is down is reported by the path itself (`graph_error`)
                with contextlib.suppress(Exception):
                    await self._run(self.stack.graph.match_entities, ["warm-up"], SearchFilter("", ""), lane="graph")
                    self._warm.add("graph")

    async def retrieve(
        self, query: str, flt: SearchFilter, k: int | None = None, profile: RetrievalProfile | None = None
    ) -> RetrievalResult:
        profile = profile or await self._run(self.load_profile, flt.kb)
        degraded: list[Degraded] = []
        await self.warm_up(profile.paths)
        try:
            reranker = await self._reranker(profile.reranker)
        except Exception:  # a reranker that cannot be built degrades like one that fails
            logger.warning("the %s reranker cannot be built; hits keep the fused order", profile.reranker.value,
                           exc_info=True)
            reranker = None
            degraded.append(Degraded.RERANK_ERROR)
            self.reranker_health[profile.reranker.value] = "error"
        started = time.perf_counter()
        deadline = started + profile.total_budget_ms / 1000
        k = k or profile.top_k
        timings: dict[str, float] = {}
        if flt.allows_nothing() or not query.strip():
            return RetrievalResult([], degraded, {"total": _ms(started)})

        def budget(stage_ms: int) -> float:
            return max(0.0, min(stage_ms / 1000, deadline - time.perf_counter()))

        async def timed(name: str, work: Awaitable[T], budget_ms: int) -> T | None:
            t0 = time.perf_counter()
            try:
                return await asyncio.wait_for(work, budget(budget_ms))
            except _NotRun:
                pass
            except TimeoutError:
                logger.warning("retrieval stage %s ran past its %d ms budget", name, budget_ms)
                degraded.append(Degraded.timeout_of(name))
            except Exception:  # a backend down degrades to the remaining paths
                logger.warning("retrieval stage %s failed", name, exc_info=True)
                degraded.append(Degraded.error_of(name))
            finally:
                timings[name] = _ms(t0)
            return None

        query_vector: np.ndarray | None = None

        async def dense() -> list[ScoredChunk]:
            nonlocal query_vector
            t0 = time.perf_counter()
            trips = self.embedder.trips
            try:
                vectors = await self.embedder.aembed_queries([query], budget(profile.embed_budget_ms))
            except EmbedderUnavailable as unavailable:
                degraded.extend(unavailable.flags)
                if unavailable.reason in ("circuit_open", "busy"):
                    raise _NotRun from unavailable  # nothing failed here: the embedder's flag says why
                if unavailable.reason in ("timeout", "no_time"):
                    raise TimeoutError from unavailable  # the path reports `dense_timeout`
                raise
            except asyncio.CancelledError:  # the dense path's budget ran out first; the embedder judged its model
                if self.embedder.trips > trips:
                    logger.warning("the query embedding outlasted the dense path's budget; the embedder's breaker opens")
                    degraded.append(Degraded.EMBEDDER_TIMEOUT)
                raise
            finally:
                timings["embed_query"] = _ms(t0)
            query_vector = vectors[0]
            return await self._run(lambda: self.faults.wrap("dense", self.stack.vectors, ("search",)).search(
                query_vector, flt, profile.path_top_k), lane="dense")

        # each engine is reached inside its lane: a store opens on first use (files, sockets), never on the loop
        def bm25() -> list[ScoredChunk]:
            return self.faults.wrap("bm25", self.stack.text, ("search",)).search(query, flt, profile.path_top_k)

        graph_empty = False

        def graph() -> list[ScoredChunk]:
            nonlocal graph_empty
            with self.stack.sessions() as session:  # the graph holds no access lists: readable documents by id
                graph_flt = document_scope(session, flt)
            found = graph_search(self.faults.wrap("graph", self.stack.graph, ("match_entities", "expand")), query, graph_flt,
                                 profile.graph_hops, self.stack.settings.graph_fanout, profile.path_top_k)
            # nothing found because nothing was ever extracted is worth saying (turn extraction on, build it)
            graph_empty = not found and not self.stack.graph.has_entities(flt.tenant, flt.kb)
            return found

        def image() -> list[ScoredChunk]:
            vector = self.stack.image_embedder.embed_texts([query])[0]  # type: ignore[union-attr]
            return self.faults.wrap("image", self.stack.image_vectors, ("search",)).search(vector, flt, profile.path_top_k)

        jobs: dict[str, Awaitable[list[ScoredChunk]]] = {}
        if "bm25" in profile.paths:
            jobs["bm25"] = self._run(bm25, lane="bm25")
        if "dense" in profile.paths:
            jobs["dense"] = dense()
        if "graph" in profile.paths:
            jobs["graph"] = self._run(graph, lane="graph")
        if "image" in profile.paths:
            if self.image_ready:
                jobs["image"] = self._run(image, lane="image")
            else:
                degraded.append(Degraded.IMAGE_NOT_CONFIGURED)
        outcomes = await asyncio.gather(*(timed(name, job, profile.path_budget_ms) for name, job in jobs.items()))
        per_path = {name: hits for name, hits in zip(jobs, outcomes) if hits is not None}
        if jobs and not per_path:  # each path said why; together they mean nothing could be searched
            logger.error("no recall path answered (%s): retrieval failed", ", ".join(degraded))
            degraded.append(Degraded.RETRIEVAL_ERROR)
        if graph_empty and "graph" in per_path:
            degraded.append(Degraded.GRAPH_EMPTY)

        t0 = time.perf_counter()
        # BM25 cannot match a passage in another script than the query; the dense path stands in for it there
        unseen, cosines = None, {}
        if "dense" in per_path:
            other = await self._run(self.other_script_chunks, query, [c.chunk_id for c in per_path["dense"]])
            cosines = {c.chunk_id: c.score for c in per_path["dense"]}
            per_path["dense"] = language_aligned(per_path["dense"], other)
            if "bm25" in per_path:
                matched = [c.chunk_id for c in per_path["bm25"]]
                unseen = {"bm25": topical_unseen(per_path["dense"], other, matched)}
        fused = fuse(per_path, profile.fusion, profile.weights, profile.rrf_k, profile.fusion_norm, unseen)
        for f in fused:  # the aligned score ranks; the cosine stays what hits report (relevance, thresholds)
            if "dense" in f.path_scores:
                f.path_scores["dense"] = cosines[f.chunk_id]
        timings["fuse"] = _ms(t0)

        t0 = time.perf_counter()
        wanted = max(k, profile.rerank_top_n) if reranker is not None else k
        # hydrate more than wanted: chunks of documents not `ready` (mid-ingest) are dropped here
        hits = await self._run(self._hydrate, fused[: wanted * 2], flt, wanted)
        timings["hydrate"] = _ms(t0)

        # relevance and its threshold come from the profile's reranker; without it, from the embedding cosine
        reranked = False
        if reranker is not None and hits:
            head = hits[: profile.rerank_top_n]
            scores = await timed("rerank", reranker.ascore(query, [h.text for h in head]), profile.rerank_budget_ms)
            self.reranker_health[profile.reranker.value] = (
                "ok" if scores is not None else "timeout" if Degraded.RERANK_TIMEOUT in degraded else "error")
            if scores is not None:
                for hit, score in zip(head, scores):
                    hit.relevance = score
                # hits past the reranked head keep fused order and carry no relevance (another scale)
                hits = [head[i] for i in reranked_order(scores, profile.rerank_mode, profile.rrf_k)] + hits[len(head):]
                reranked = True
        hits = hits[:k]
        if query_vector is None and not reranked and hits and "dense" not in profile.paths:
            # a profile without the dense path still reports relevance: one query embedding, and the
            # passages' vectors from the cache ingest filled (not embedded again by grading)
            try:
                query_vector = (await self.embedder.aembed_queries([query], budget(profile.embed_budget_ms)))[0]
            except EmbedderUnavailable as unavailable:
                degraded.extend(unavailable.flags)
        if query_vector is not None and not reranked:
            await self._run(self._score_relevance, hits, query_vector)
        # a threshold calibrated for the reranker means nothing for the cosine it fell back to
        threshold = profile.relevance_threshold if reranked or profile.reranker is RerankerKind.NONE else None
        timings["total"] = _ms(started)
        return RetrievalResult(hits, degraded, timings, relevance_threshold=threshold)

    def other_script_chunks(self, query: str, chunk_ids: list[str]) -> set[str]:
        """The chunks among `chunk_ids` written in another script than the query."""
        if not chunk_ids:
            return set()
        with self.stack.sessions() as session:
            # a passage's opening is enough to tell its script, and reading only it keeps this at a few ms
            heads = session.execute(select(Chunk.id, func.substr(Chunk.text, 1, SCRIPT_SAMPLE)).where(Chunk.id.in_(chunk_ids)))
            return other_script(query, heads)

    def _hydrate(self, fused: list, flt: SearchFilter, k: int) -> list[Hit]:
        if not fused:
            return []
        # two primary-key lookups: a join lets SQLite's planner scan every ready document instead
        with self.stack.sessions() as session:
            chunks = {
                row.id: row
                for row in session.execute(
                    select(Chunk.id, Chunk.text, Chunk.ordinal, Chunk.doc_id, Chunk.meta).where(
                        Chunk.id.in_([f.chunk_id for f in fused])
                    )
                )
            }
            docs = {
                row.id: row
                for row in session.execute(
                    select(Document.id, Document.filename, Document.title, Document.source_uri).where(
                        Document.id.in_({c.doc_id for c in chunks.values()}),
                        Document.status == DocumentStatus.READY,
                        Document.tenant_id == flt.tenant,
                        Document.kb_id == flt.kb,
                    )
                )
            }
        hits: list[Hit] = []
        for f in fused:
            chunk = chunks.get(f.chunk_id)
            doc = docs.get(chunk.doc_id) if chunk is not None else None
            if doc is None:
                continue
            hits.append(
                Hit(
                    chunk_id=f.chunk_id,
                    doc_id=doc.id,
                    text=chunk.text,
                    score=f.score,
                    filename=doc.filename,
                    title=doc.title,
                    source_uri=doc.source_uri,
                    ordinal=chunk.ordinal,
                    location=chunk.meta,
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
        self.embedder.close()
        for lane in self._lanes.values():
            lane.shutdown(wait=False, cancel_futures=True)
        for reranker in self._rerankers.values():
            reranker.close()
