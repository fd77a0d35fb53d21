"""What the app holds while it runs: one stack, one ingestor, one retriever, one graph context, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from langgraph.checkpoint.base import BaseCheckpointSaver

from sieve.api.admission import TurnGate
from sieve.api.index_builder import IndexBuilder
from sieve.api.job_queue import JobQueue
from sieve.api.metrics import Metrics
from sieve.graphs.agentic_rag.exemplars import exemplar_scores
from sieve.graphs.agentic_rag.runner import open_threads
from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.llm import FAILURES
from sieve.graphs.shared.wiring import NamedKnowledgeBaseRetriever, build_context
from sieve.ingest.pipeline import Ingestor
from sieve.models.chat import failure_kind
from sieve.models.guarded_embedder import EmbedderUnavailable
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import PathName, require_deployable_profiles
from sieve.settings import Settings
from sieve.stores.stack import Stack

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    stack: Stack
    ingestor: Ingestor
    retriever: HybridRetriever
    context: GraphContext
    jobs: JobQueue
    metrics: Metrics
    # one connection to the thread store for the whole server: a connection per request makes
    # concurrent conversations fail with "database is locked"
    threads: BaseCheckpointSaver[str]
    _resources: AsyncExitStack = field(repr=False)
    # the chat LLM's latest outcome: `off` without one, `checking` until the start-up probe answers,
    # then `ok`, `error` or `timeout` as probes and runs find it
    llm_health: str = "off"
    _llm_probe: asyncio.Task | None = field(default=None, repr=False)
    turns: TurnGate = field(init=False, repr=False)  # admission and pacing of conversation turns
    index_builder: IndexBuilder | None = field(default=None, repr=False)  # HNSW builds after uploads

    def __post_init__(self) -> None:
        self.turns = TurnGate(self.settings.turn_concurrency, self.settings.turn_queue)

    @property
    def uploads(self) -> Path:
        """Uploaded originals, kept by content hash so a document can be re-indexed."""
        return self.settings.home / "uploads"

    @classmethod
    async def open(cls, settings: Settings, stack: Stack, metrics: Metrics) -> AppState:
        # a stored profile needing a model this deployment lacks stops the start, naming the setting
        await asyncio.to_thread(require_deployable_profiles, stack.sessions, settings)
        ingestor = await asyncio.to_thread(Ingestor, stack)  # reconciles what a killed process left
        context = await asyncio.to_thread(build_context, stack)
        assert isinstance(context.retriever, NamedKnowledgeBaseRetriever)
        retriever = context.retriever.hybrid
        # load the model, the engines and the routing exemplars now, not in the first user's request;
        # a failing embedder leaves the breaker open and the server starts without it (see /readyz)
        await retriever.warm_up(get_args(PathName))
        if context.embedder is not None:
            with contextlib.suppress(EmbedderUnavailable):  # a stuck embedder is the breaker's business
                await exemplar_scores(context.embedder, "warm-up", context.embedder_timeout_s)
        resources = AsyncExitStack()
        threads = await resources.enter_async_context(open_threads(settings))
        index_builder = IndexBuilder(stack, settings)
        jobs = JobQueue(metrics, stack.sessions, str(settings.home.resolve()), succeeded=index_builder.wrote)
        await jobs.start()
        index_builder.start()
        state = cls(settings, stack, ingestor, retriever, context, jobs, metrics, threads, resources,
                    index_builder=index_builder)
        if context.llm is not None:  # in the background: a dead LLM must not hold up the start
            state.llm_health = "checking"
            state._llm_probe = asyncio.create_task(state._probe_llm())
        return state

    async def _probe_llm(self) -> None:
        """One token, so that /readyz names an LLM that is down before a user's question finds it."""
        assert self.context.llm is not None
        try:
            await asyncio.wait_for(self.context.llm.ainvoke("ping", max_tokens=1), self.settings.llm_timeout_s)
        except Exception as exc:
            log.warning("the chat LLM's health check failed", exc_info=True)
            self.llm_health = failure_kind(exc).removeprefix("llm_")
        else:
            self.llm_health = "ok"

    def observe_run(self, done: dict[str, Any]) -> None:
        """A finished run (its `done` event) in the metrics and in the LLM's health."""
        self.metrics.observe_run(done)
        if self.context.llm is not None:
            failed = [flag for flag in done.get("degraded", []) if flag in FAILURES]
            if failed:
                self.llm_health = failed[-1].removeprefix("llm_")
            elif not done.get("refused"):  # an answered run without an LLM failure was written by it
                self.llm_health = "ok"

    def models_health(self) -> dict[str, dict[str, Any]]:
        """Each model's latest state: what questions are degraded by now."""
        rerankers = self.retriever.reranker_health
        failing = [state for state in rerankers.values() if state != "ok"]
        reranker = {"state": failing[0] if failing else "ok" if rerankers else "unused", "kinds": dict(rerankers)}
        return {"embedder": self.retriever.embedder.health(), "reranker": reranker, "llm": {"state": self.llm_health}}

    async def close(self) -> None:
        if self._llm_probe is not None:
            self._llm_probe.cancel()
        await self.jobs.stop()
        if self.index_builder is not None:
            await self.index_builder.stop()
        await self._resources.aclose()
        self.retriever.close()
