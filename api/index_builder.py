"""The server's HNSW builds: once uploads settle, each embedded vector shard with enough new points gets
its graphs built in another process and swapped in (`QdrantEdgeVectorIndex.build_aside`).

Until then, and while a build runs, searches go on against the live shard: exact on the new points,
through the previous graphs on the rest. Builds run one at a time, in a thread of their own that only
waits for the build process, so neither the event loop nor the ingest jobs wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sieve.settings import Settings
from sieve.stores.stack import Stack

log = logging.getLogger(__name__)


class IndexBuilder:
    def __init__(self, stack: Stack, settings: Settings):
        self.stack = stack
        self.quiet_s = settings.hnsw_build_quiet_s
        self.max_wait_s = settings.hnsw_build_max_wait_s
        self.niceness = settings.hnsw_build_niceness
        self._written = asyncio.Event()
        self._first: float | None = None  # the first write no build has covered yet
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.wrote()  # a home served before the server built graphs may hold many unindexed points
        self._task = asyncio.create_task(self._run(), name="sieve-hnsw-builds")

    def wrote(self) -> None:
        """An ingest job finished: a build follows once no other has finished for `quiet_s`."""
        self._last = time.monotonic()
        if self._first is None:
            self._first = self._last
        self._written.set()

    async def stop(self) -> None:
        """Stops waiting; a build in progress is stopped by closing its index (the stack's close)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._written.wait()
            await self._settle()
            for index in self.stack.open_edge_vectors():
                try:
                    if await asyncio.to_thread(index.needs_build):
                        started = time.monotonic()
                        if await asyncio.to_thread(index.build_aside, self.niceness):
                            log.info("built the HNSW index of %s in %.1f s", index.path, time.monotonic() - started)
                except Exception:  # the shard stays as it was and searches stay exact; the next upload retries
                    log.exception("building the HNSW index of %s failed", index.path)

    async def _settle(self) -> None:
        """Waits until `quiet_s` passed since the last write, or `max_wait_s` since the first."""
        while True:
            self._written.clear()
            assert self._first is not None
            due = min(self._last + self.quiet_s, self._first + self.max_wait_s)
            if time.monotonic() >= due:
                self._first = None
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._written.wait(), due - time.monotonic())
