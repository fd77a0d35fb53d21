"""The recall paths, one class each behind `RecallPath`: BM25, dense, graph and image.

A path searches one `QueryRun` and returns its candidates best first, or raises: the hybrid
retriever runs every path under its budget and turns a raise into that path's degradation flag.
The embedded engines are synchronous, so each path reaches its engine inside its own bounded thread
pool (`Lanes`): a stuck engine's timed-out calls queue behind it only, and a store opens on first
use (files, sockets) in that pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sieve.degraded import Degraded
from sieve.models.guarded_embedder import EmbedderUnavailable, GuardedEmbedder
from sieve.retrievers.faults import Faults
from sieve.retrievers.graph_path import graph_search
from sieve.retrievers.types import QueryRun, elapsed_ms
from sieve.stores.acl import document_scope
from sieve.stores.stack import Space, Stack
from sieve.stores.types import ScoredChunk, SearchFilter

T = TypeVar("T")
logger = logging.getLogger(__name__)
ANYWHERE = SearchFilter("", "")  # warm-up searches: loads an engine, matches nothing of anyone's


class PathNotRun(Exception):
    """A path that did not run: a component it needs already reported why (the embedder's open breaker)."""


class Lanes:
    """One bounded thread pool per component (`store`, `bm25`, `dense`, ...), created on first use."""

    def __init__(self, workers: int = 2):
        self._workers = workers
        self._pools: dict[str, ThreadPoolExecutor] = {}

    async def run(self, fn: Callable[..., T], *args: object, lane: str = "store") -> T:
        if lane not in self._pools:
            self._pools[lane] = ThreadPoolExecutor(self._workers, thread_name_prefix=f"sieve-{lane}")
        return await asyncio.get_running_loop().run_in_executor(self._pools[lane], fn, *args)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)


class RecallPath(Protocol):
    """One way of finding candidate chunks for a query."""

    name: str

    def unconfigured(self) -> Degraded | None:
        """The flag to report instead of searching when the deployment lacks what the path needs."""
        ...

    async def warm_up(self) -> bool:
        """Open the engine and load the model once, outside any query's budget; whether it is warm now
        (a path that cannot warm up says why when a query searches it)."""
        ...

    async def search(self, run: QueryRun) -> list[ScoredChunk]: ...


class Bm25Path:
    name = "bm25"

    def __init__(self, stack: Stack, faults: Faults, lanes: Lanes):
        self.stack, self.faults, self.lanes = stack, faults, lanes

    def unconfigured(self) -> Degraded | None:
        return None

    async def warm_up(self) -> bool:
        # tantivy creates its folder, opens its index and loads its searcher on the first search
        try:
            await self.lanes.run(lambda: self.stack.text.search("warm-up", ANYWHERE, 1), lane=self.name)
        except Exception:  # a text backend that cannot open is reported by the path (`bm25_error`)
            logger.debug("the BM25 index did not warm up; queries will report it", exc_info=True)
            return False
        return True

    async def search(self, run: QueryRun) -> list[ScoredChunk]:
        def search() -> list[ScoredChunk]:
            text = self.faults.wrap(self.name, self.stack.text, ("search",))
            return text.search(run.query, run.flt, run.profile.path_top_k)

        return await self.lanes.run(search, lane=self.name)


class DensePath:
    """The query embedding (behind the embedder's breaker) and the vector index's nearest passages."""

    name = "dense"

    def __init__(self, stack: Stack, embedder: GuardedEmbedder, faults: Faults, lanes: Lanes):
        self.stack, self.embedder, self.faults, self.lanes = stack, embedder, faults, lanes
        # a fine-tuned embedder (a profile's `embedding_model`) gets a breaker of its own, made on first use
        self._tuned: dict[str, GuardedEmbedder] = {}
        # each profile's space once opened (the stack keeps it open): no lane hop a query to look it up again
        self._spaces: dict[str | None, Space] = {}

    def unconfigured(self) -> Degraded | None:
        return None

    async def space(self, run: QueryRun) -> tuple[GuardedEmbedder, Space]:
        """The embedder and vectors of the knowledge base's vector space (its profile's `embedding_model`):
        a query is embedded by the model its passages were, or it matches nothing."""
        folder = run.profile.embedding_model
        space = self._spaces.get(folder)
        if space is None:
            space = self._spaces[folder] = await self.lanes.run(self.stack.model_space, folder, lane=self.name)
        if space.embedder is self.stack.embedder:
            return self.embedder, space
        name = space.embedder.name
        if name not in self._tuned:
            faulty = self.faults.wrap("embedder", space.embedder, ("embed_queries", "embed_passages"))
            self._tuned[name] = GuardedEmbedder(faulty, self.embedder.policy)
        return self._tuned[name], space

    async def warm_up(self) -> bool:
        # an embedder failing now opens the breaker and the path reports it under its budget; the
        # vector index opens once the embedder answers (its folder is named by the embedder's width)
        try:
            await self.lanes.run(self.embedder.embed_queries, ["warm-up"])
            await self.lanes.run(lambda: self.stack.vectors)
        except EmbedderUnavailable:
            logger.debug("the embedder did not warm up; its breaker reports it", exc_info=True)
        return True  # tried once: the breaker, not another warm-up, decides when the embedder is retried

    async def search(self, run: QueryRun) -> list[ScoredChunk]:
        embedder, space = await self.space(run)
        t0 = time.perf_counter()
        trips = embedder.trips
        try:
            vectors = await embedder.aembed_queries([run.query], run.budget(run.profile.embed_budget_ms))
        except EmbedderUnavailable as unavailable:
            run.degraded.extend(unavailable.flags)
            if unavailable.reason in ("circuit_open", "busy"):
                raise PathNotRun from unavailable  # nothing failed here: the embedder's flag says why
            if unavailable.reason in ("timeout", "no_time"):
                raise TimeoutError from unavailable  # the path reports `dense_timeout`
            raise
        except asyncio.CancelledError:  # the dense path's budget ran out first; the embedder judged its model
            if embedder.trips > trips:
                logger.warning("the query embedding outlasted the dense path's budget; the embedder's breaker opens")
                run.degraded.append(Degraded.EMBEDDER_TIMEOUT)
            raise
        finally:
            run.timings["embed_query"] = elapsed_ms(t0)
        run.query_vector = vector = vectors[0]
        run.vector_cache = space.cache

        def search() -> list[ScoredChunk]:
            index = self.faults.wrap(self.name, space.vectors, ("search",))
            return index.search(vector, run.flt, run.profile.path_top_k)

        return await self.lanes.run(search, lane=self.name)


class GraphPath:
    """The query's entities, `graph_hops` relations out, and the chunks linked on the way."""

    name = "graph"

    def __init__(self, stack: Stack, faults: Faults, lanes: Lanes):
        self.stack, self.faults, self.lanes = stack, faults, lanes

    def unconfigured(self) -> Degraded | None:
        return None

    async def warm_up(self) -> bool:
        try:
            await self.lanes.run(self.stack.graph.match_entities, ["warm-up"], ANYWHERE, lane=self.name)
        except Exception:  # a graph backend that is down is reported by the path (`graph_error`)
            logger.debug("the graph store did not warm up; queries will report it", exc_info=True)
            return False
        return True

    async def search(self, run: QueryRun) -> list[ScoredChunk]:
        return await self.lanes.run(self._search, run, lane=self.name)

    def _search(self, run: QueryRun) -> list[ScoredChunk]:
        flt = run.flt
        with self.stack.sessions() as session:  # the graph holds no access lists: readable documents by id
            graph_flt = document_scope(session, flt)
        graph = self.faults.wrap(self.name, self.stack.graph, ("match_entities", "expand"))
        found = graph_search(graph, run.query, graph_flt, run.profile.graph_hops, self.stack.settings.graph_fanout,
                             run.profile.path_top_k)
        # nothing found because nothing was ever extracted is worth saying (turn extraction on, build it)
        if not found and not self.stack.graph.has_entities(flt.tenant, flt.kb):
            run.on_answer[self.name] = [Degraded.GRAPH_EMPTY]
        return found


class ImagePath:
    """The query's CLIP text embedding and the nearest images (their chunks); needs an image embedder."""

    name = "image"

    def __init__(self, stack: Stack, faults: Faults, lanes: Lanes):
        self.stack, self.faults, self.lanes = stack, faults, lanes

    def unconfigured(self) -> Degraded | None:
        return None if self.stack.settings.image_embedder_configured else Degraded.IMAGE_NOT_CONFIGURED

    async def warm_up(self) -> bool:
        if self.unconfigured() is not None:
            return False
        try:
            await self.lanes.run(lambda: self.stack.image_embedder.embed_texts(["warm-up"]), lane=self.name)  # type: ignore[union-attr]
            await self.lanes.run(lambda: self.stack.image_vectors, lane=self.name)
        except Exception:  # a CLIP model that cannot load is reported by the path (`image_error`)
            logger.debug("the image path did not warm up; queries will report it", exc_info=True)
            return False
        return True

    async def search(self, run: QueryRun) -> list[ScoredChunk]:
        def search() -> list[ScoredChunk]:
            vector = self.stack.image_embedder.embed_texts([run.query])[0]  # type: ignore[union-attr]
            index = self.faults.wrap(self.name, self.stack.image_vectors, ("search",))
            return index.search(vector, run.flt, run.profile.path_top_k)

        return await self.lanes.run(search, lane=self.name)
