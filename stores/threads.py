"""Conversation memory: `threads.sqlite` under the home, or LangGraph's AsyncPostgresSaver in the
metadata DB's database.

On SQLite every call is one hop to a thread of the store's own (`SqliteThreads`). LangGraph's
AsyncSqliteSaver takes an asyncio lock and then makes five or six round trips through aiosqlite's
thread per read, each of which waits for the event loop: with 50 conversations at once a turn waited
hundreds of milliseconds for its thread's checkpoint before it could even be routed.

On PostgreSQL every API worker sees every thread. The saver's own tables are created (and migrated)
once per process, under an advisory lock, because its `setup()` is not safe to run from two workers at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, closing
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver
from sqlalchemy import make_url

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection

T = TypeVar("T")
_SETUP_LOCK = 0x51E7E + 1  # any constant all workers share; the schema lock is 0x51E7E
_set_up: set[str] = set()


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL (`postgresql+psycopg://...`) as psycopg's connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def postgres_threads(url: str) -> AsyncIterator[AsyncPostgresSaver]:
    """A checkpointer on its own connection, ready to use; `url` is the metadata DB's SQLAlchemy URL."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # the `postgres` extra

    conninfo = libpq_url(url)
    async with AsyncPostgresSaver.from_conn_string(conninfo) as saver:
        if conninfo not in _set_up:
            # from_conn_string opens one connection (never a pool): lock and unlock run on the same session
            conn = cast("AsyncConnection[dict[str, Any]]", saver.conn)
            await conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
            try:
                await saver.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
            _set_up.add(conninfo)
        yield saver


class SqliteThreads(SqliteSaver):
    """LangGraph's SqliteSaver whose async methods each run whole on one thread of the store's own
    (one hop per call, in the order they were made); same tables, same rows as AsyncSqliteSaver."""

    def __init__(self, conn: sqlite3.Connection):
        super().__init__(conn)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="sieve-threads")

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(partial(self.get_tuple, config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in await self._run(lambda: list(self.list(config, filter=filter, before=before, limit=limit))):
            yield item

    async def aput(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> RunnableConfig:
        return await self._run(partial(self.put, config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._run(partial(self.put_writes, config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(partial(self.delete_thread, thread_id))

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Mapping[str, Any]:
        return await self._run(partial(self.get_delta_channel_history, config=config, channels=channels))

    def close(self) -> None:
        self._worker.shutdown(wait=True)


@asynccontextmanager
async def sqlite_threads(path: Path) -> AsyncIterator[SqliteThreads]:
    """The thread store in the SQLite file `path` (created with its tables on first use)."""
    # check_same_thread off: the connection is opened here and used on the store's own thread
    with closing(sqlite3.connect(str(path), check_same_thread=False)) as conn:
        saver = SqliteThreads(conn)
        try:
            yield saver
        finally:
            saver.close()
