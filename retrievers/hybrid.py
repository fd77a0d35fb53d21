"""`HybridRetriever`: every enabled recall path under its own time budget, fused, reranked, hydrated, scored.

It composes small components, each usable and testable on its own: the recall paths (`paths.py`:
BM25, dense, graph, image), the cross-lingual stand-in (`crosslingual.py`), fusion (`fusion.py`),
the hydrator (`hydrate.py`) and the rerankers (`rerank.py`). What it adds is the budgets and the
degradation ladder, each step reported in `degraded`, never raised:
- every stage (query embedding, each path, the reranker) runs under its own budget, and never
  past what is left of the profile's `total_budget_ms`;
- embedder or dense timeout/error -> the other paths (BM25) answer: `embedder_timeout`, `dense_timeout`;
- a path's backend down -> the remaining paths: `<path>_error`;
- reranker timeout/error -> fused order with cosine relevance: `rerank_timeout` / `rerank_error`.
A timed-out engine thread keeps running in its own lane (`paths.Lanes`), and a late result is
dropped with its cancelled future.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Collection
from typing import TypeVar

from sqlalchemy import select

from sieve.degraded import Degraded
from sieve.errors import ConfigurationError
from sieve.models.guarded_embedder import BreakerPolicy, EmbedderUnavailable, GuardedEmbedder
from sieve.retrievers.crosslingual import CrossLingualStandIn
from sieve.retrievers.faults import Faults
from sieve.retrievers.fusion import fuse
from sieve.retrievers.hydrate import Hydrator
from sieve.retrievers.paths import Bm25Path, DensePath, GraphPath, ImagePath, Lanes, PathNotRun, RecallPath
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.rerank import Reranker, RerankerKind, Rerankers, reranked_head
from sieve.retrievers.types import Hit, QueryRun, RetrievalResult, elapsed_ms
from sieve.stores.metadata import KnowledgeBase
from sieve.stores.stack import Stack
from sieve.stores.types import ScoredChunk, SearchFilter

T = TypeVar("T")
logger = logging.getLogger(__name__)
WARM_UP_ORDER = ("dense", "bm25", "image", "graph")  # the embedder first: the vector index's folder depends on it


def query_embedder(stack: Stack, faults: Faults) -> GuardedEmbedder:
    """The stack's embedder as queries use it: `SIEVE_FAULTS`' embedder fault applied, behind a breaker."""
    faulty = faults.wrap("embedder", stack.embedder, ("embed_queries", "embed_passages"))
    return GuardedEmbedder(faulty, BreakerPolicy(cooldown_s=stack.settings.embedder_cooldown_s))


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
        self.lanes = Lanes(lane_workers)
        self.dense = DensePath(stack, self.embedder, self.faults, self.lanes)
        paths: list[RecallPath] = [  # in this order fusion sees them (ties keep the first path's order)
            Bm25Path(stack, self.faults, self.lanes),
            self.dense,
            GraphPath(stack, self.faults, self.lanes),
            ImagePath(stack, self.faults, self.lanes),
        ]
        self.paths = {path.name: path for path in paths}
        self.stand_in = CrossLingualStandIn(stack.sessions)
        self.hydrator = Hydrator(stack)
        self.rerankers = Rerankers(stack, self.embedder, self.faults, self.lanes)
        self._warm: set[str] = set()
        # concurrent first queries wait for one warm-up instead of each paying it inside its budget
        self._warming = asyncio.Lock()

    @property
    def reranker_health(self) -> dict[str, str]:
        """Each reranker kind's latest outcome (`ok`, `error`, `timeout`), for readiness reports."""
        return self.rerankers.health

    def load_profile(self, kb_id: str) -> RetrievalProfile:
        with self.stack.sessions() as session:
            stored = session.scalar(select(KnowledgeBase.profile).where(KnowledgeBase.id == kb_id))
        return RetrievalProfile.from_stored(stored)

    def other_script_chunks(self, query: str, chunk_ids: list[str]) -> set[str]:
        """The chunks among `chunk_ids` written in another script than the query."""
        return self.stand_in.other_script_chunks(query, chunk_ids)

    async def warm_up(self, paths: Collection[str]) -> None:
        """Open each path's engine and load its model once: start-up cost, never counted in a query's budget."""
        async with self._warming:
            for name in WARM_UP_ORDER:
                if name in paths and name not in self._warm and await self.paths[name].warm_up():
                    self._warm.add(name)

    async def retrieve(
        self, query: str, flt: SearchFilter, k: int | None = None, profile: RetrievalProfile | None = None
    ) -> RetrievalResult:
        if profile is None:
            profile = await self.lanes.run(self.load_profile, flt.kb)
        degraded: list[Degraded] = []
        await self.warm_up(profile.paths)
        reranker = await self._reranker(profile.reranker, degraded)
        run = QueryRun(query, flt, profile, degraded)
        k = k or profile.top_k
        if flt.allows_nothing() or not query.strip():
            return RetrievalResult([], degraded, {"total": elapsed_ms(run.started)})
        per_path = await self._recall(run)
        wanted = max(k, profile.rerank_top_n) if reranker is not None else k
        # relevance and its threshold come from the profile's reranker; without it, from the embedding cosine
        scored = reranker is None and run.query_vector is not None and run.vector_cache is not None
        hits = await self.lanes.run(self._hits, run, per_path, wanted, scored)
        hits, reranked = await self._reranked(run, reranker, hits)
        hits = hits[:k]
        if not reranked and not scored:
            await self._cosine_relevance(run, hits)
        # a threshold calibrated for the reranker means nothing for the cosine it fell back to
        threshold = profile.relevance_threshold if reranked or profile.reranker is RerankerKind.NONE else None
        run.timings["total"] = elapsed_ms(run.started)
        return RetrievalResult(hits, degraded, run.timings, relevance_threshold=threshold)

    async def _reranker(self, kind: RerankerKind, degraded: list[Degraded]) -> Reranker | None:
        try:
            return await self.rerankers.get(kind)
        except ConfigurationError:  # a deployment without the model the profile names: no query can fix it
            raise
        except Exception:  # a reranker that cannot be built degrades like one that fails
            logger.warning("the %s reranker cannot be built; hits keep the fused order", kind.value, exc_info=True)
            degraded.append(Degraded.RERANK_ERROR)
            self.rerankers.health[kind.value] = "error"
            return None

    async def _stage(self, run: QueryRun, name: str, work: Awaitable[T], budget_ms: int) -> T | None:
        """`work` under its budget: its result, or None with its flag in `run.degraded` (logged)."""
        t0 = time.perf_counter()
        try:
            return await asyncio.wait_for(work, run.budget(budget_ms))
        except PathNotRun:
            pass
        except TimeoutError:
            logger.warning("retrieval stage %s ran past its %d ms budget", name, budget_ms)
            run.degraded.append(Degraded.timeout_of(name))
        except Exception:  # a backend down degrades to the remaining paths
            logger.warning("retrieval stage %s failed", name, exc_info=True)
            run.degraded.append(Degraded.error_of(name))
        finally:
            run.timings[name] = elapsed_ms(t0)
        return None

    async def _recall(self, run: QueryRun) -> dict[str, list[ScoredChunk]]:
        """Every path of the profile at once, each under `path_budget_ms`; those that answered."""
        jobs: dict[str, Awaitable[list[ScoredChunk]]] = {}
        for name, path in self.paths.items():
            if name not in run.profile.paths:
                continue
            missing = path.unconfigured()
            if missing is not None:
                run.degraded.append(missing)
            else:
                jobs[name] = path.search(run)
        budget = run.profile.path_budget_ms
        outcomes = await asyncio.gather(*(self._stage(run, name, job, budget) for name, job in jobs.items()))
        per_path = {name: hits for name, hits in zip(jobs, outcomes) if hits is not None}
        if jobs and not per_path:  # each path said why; together they mean nothing could be searched
            logger.error("no recall path answered (%s): retrieval failed", ", ".join(run.degraded))
            run.degraded.append(Degraded.RETRIEVAL_ERROR)
        for name in per_path:
            run.degraded.extend(run.on_answer.get(name, ()))
        return per_path

    def _hits(self, run: QueryRun, per_path: dict[str, list[ScoredChunk]], wanted: int, scored: bool) -> list[Hit]:
        """Fused, hydrated and (`scored`) given their cosine relevance: short synchronous steps, run in
        one lane hop instead of one each."""
        t0 = time.perf_counter()
        # BM25 cannot match a passage in another script than the query; the dense path stands in for it there
        stood_in = self.stand_in.apply(run.query, per_path)
        p = run.profile
        fused = fuse(stood_in.per_path, p.fusion, p.weights, p.rrf_k, p.fusion_norm, stood_in.unseen)
        stood_in.report_cosines(fused)
        run.timings["fuse"] = elapsed_ms(t0)
        t0 = time.perf_counter()
        # hydrate more than wanted: chunks of documents not `ready` (mid-ingest) are dropped there
        hits = self.hydrator.hydrate(fused[: wanted * 2], run.flt, wanted)
        vector, cache = run.query_vector, run.vector_cache
        if scored and vector is not None and cache is not None:
            self.hydrator.score_relevance(hits, vector, cache)
        run.timings["hydrate"] = elapsed_ms(t0)
        return hits

    async def _reranked(self, run: QueryRun, reranker: Reranker | None, hits: list[Hit]) -> tuple[list[Hit], bool]:
        """`hits` with the head reranked, and whether it was (False: no reranker, or it degraded)."""
        if reranker is None or not hits:
            return hits, False
        p = run.profile
        head = hits[: p.rerank_top_n]
        scores = await self._stage(run, "rerank", reranker.ascore(run.query, [h.text for h in head]), p.rerank_budget_ms)
        self.rerankers.health[p.reranker.value] = (
            "ok" if scores is not None else "timeout" if Degraded.RERANK_TIMEOUT in run.degraded else "error")
        if scores is None:
            return hits, False
        return reranked_head(hits, scores, p.rerank_mode, p.rrf_k), True

    async def _cosine_relevance(self, run: QueryRun, hits: list[Hit]) -> None:
        if run.query_vector is None and hits and "dense" not in run.profile.paths:
            # a profile without the dense path still reports relevance: one query embedding, and the
            # passages' vectors from the cache ingest filled (not embedded again by grading)
            embedder, space = await self.dense.space(run)
            try:
                vectors = await embedder.aembed_queries([run.query], run.budget(run.profile.embed_budget_ms))
                run.query_vector, run.vector_cache = vectors[0], space.cache
            except EmbedderUnavailable as unavailable:
                run.degraded.extend(unavailable.flags)
        if run.query_vector is not None and run.vector_cache is not None:
            await self.lanes.run(self.hydrator.score_relevance, hits, run.query_vector, run.vector_cache)

    def close(self) -> None:
        self.embedder.close()
        self.lanes.close()
        self.rerankers.close()
