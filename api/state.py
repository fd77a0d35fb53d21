"""What the app holds while it runs: one stack, one ingestor, one retriever, one graph context, jobs."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from sieve.api.job_queue import JobQueue
from sieve.api.metrics import Metrics
from sieve.graphs.context import GraphContext
from sieve.graphs.exemplars import exemplar_scores
from sieve.graphs.runner import open_threads
from sieve.graphs.wiring import NamedKnowledgeBaseRetriever, build_context
from sieve.ingest.pipeline import Ingestor
from sieve.models.guarded_embedder import EmbedderUnavailable
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter


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
    threads: BaseCheckpointSaver
    _resources: AsyncExitStack = field(repr=False)

    @property
    def uploads(self) -> Path:
        """Uploaded originals, kept by content hash so a document can be re-indexed."""
        return self.settings.home / "uploads"

    @classmethod
    async def open(cls, settings: Settings, stack: Stack, metrics: Metrics) -> AppState:
        ingestor = await asyncio.to_thread(Ingestor, stack)  # reconciles what a killed process left
        context = await asyncio.to_thread(build_context, stack)
        assert isinstance(context.retriever, NamedKnowledgeBaseRetriever)
        retriever = context.retriever.hybrid
        # load the model, the engines and the routing exemplars now, not in the first user's request
        await retriever.retrieve("warm-up", SearchFilter(tenant="", kb=""), 1)
        if context.embedder is not None:
            with contextlib.suppress(EmbedderUnavailable):  # a stuck embedder is the breaker's business
                await exemplar_scores(context.embedder, "warm-up", context.embedder_timeout_s)
        resources = AsyncExitStack()
        threads = await resources.enter_async_context(open_threads(settings))
        jobs = JobQueue(metrics, stack.sessions, str(settings.home.resolve()))
        await jobs.start()
        return cls(settings, stack, ingestor, retriever, context, jobs, metrics, threads, resources)

    async def close(self) -> None:
        await self.jobs.stop()
        await self._resources.aclose()
        self.retriever.close()
