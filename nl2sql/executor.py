"""Run guarded SQL on a read-only connection under a statement timeout, and return at most `max_rows` rows.

The guard already refuses writes; the connection refuses them again (SQLite: mode=ro, query_only, no
ATTACH, an authorizer that permits reads only; PostgreSQL: a READ ONLY transaction that is rolled back),
so one mistake in either layer is not enough to change data. Synchronous: async callers use
asyncio.to_thread.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from sieve.nl2sql.guard import SQLRefused

DEFAULT_TIMEOUT_S = 2.0
_PROGRESS_EVERY = 1000  # SQLite VM instructions between deadline checks

# Everything a plain SELECT needs; PRAGMA, ATTACH, writes and schema changes are denied.
_SQLITE_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION})


class SQLExecutionError(SQLRefused, RuntimeError):
    """The statement passed the guard but failed or timed out in the database."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def execute(engine: Engine, sql: str, *, max_rows: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> QueryResult:
    """Run `sql` against the database behind `engine` (SQLite file or PostgreSQL)."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            raise SQLExecutionError("an in-memory SQLite database cannot be opened read-only")
        return execute_sqlite(path, sql, max_rows=max_rows, timeout_s=timeout_s)
    if engine.dialect.name == "postgresql":
        return execute_postgres(engine, sql, max_rows=max_rows, timeout_s=timeout_s)
    raise SQLExecutionError(f"unsupported database {engine.dialect.name}")


def execute_sqlite(
    path: str | Path, sql: str, *, max_rows: int, timeout_s: float = DEFAULT_TIMEOUT_S
) -> QueryResult:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_s)
    except sqlite3.Error as err:
        raise SQLExecutionError(f"cannot open the database read-only: {err}") from None
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(_sqlite_authorizer)
        deadline = time.monotonic() + timeout_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_EVERY)
        cursor = conn.execute(sql)
        rows = cursor.fetchmany(max_rows)
        columns = [d[0] for d in cursor.description or ()]
    except sqlite3.OperationalError as err:
        if "interrupted" in str(err):
            raise SQLExecutionError(f"statement timed out after {timeout_s:g}s") from None
        raise SQLExecutionError(str(err)) from None
    except sqlite3.Error as err:
        raise SQLExecutionError(str(err)) from None
    finally:
        conn.close()
    return QueryResult(columns=columns, rows=[tuple(r) for r in rows])


def _sqlite_authorizer(action: int, arg1: str | None, *_rest: object) -> int:
    if action not in _SQLITE_ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_READ and (arg1 or "").lower().startswith("sqlite_"):
        return sqlite3.SQLITE_DENY  # the schema tables are never part of an answer
    return sqlite3.SQLITE_OK


def postgres_preamble(timeout_s: float) -> list[str]:
    """Statements that open the transaction: read-only, bounded in time, scoped to this transaction."""
    return ["SET TRANSACTION READ ONLY", f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}"]


def execute_postgres(
    engine: Engine, sql: str, *, max_rows: int, timeout_s: float = DEFAULT_TIMEOUT_S
) -> QueryResult:
    dbapi_error = engine.dialect.loaded_dbapi.Error
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            # The driver's own cursor, without parameters, so a '%' in a LIKE pattern stays a '%'.
            for statement in postgres_preamble(timeout_s):  # the first statements of a new transaction
                cursor.execute(statement)
            cursor.execute(sql)
            columns = [d[0] for d in cursor.description or ()]
            rows = [tuple(r) for r in cursor.fetchmany(max_rows)]
        except dbapi_error as err:
            message = (str(err).strip().splitlines() or [type(err).__name__])[0]
            if "statement timeout" in message:
                raise SQLExecutionError(f"statement timed out after {timeout_s:g}s") from None
            raise SQLExecutionError(message) from None
        finally:
            cursor.close()
            raw.rollback()
    return QueryResult(columns=columns, rows=rows)
