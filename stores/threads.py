"""Conversation memory on PostgreSQL: LangGraph's AsyncPostgresSaver in the metadata DB's database.

Every API worker then sees every thread. The saver's own tables are created (and migrated) once per
process, under an advisory lock, because its `setup()` is not safe to run from two workers at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import make_url

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection

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
