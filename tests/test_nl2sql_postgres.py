"""What only PostgreSQL can show: the guard's output runs on a real server (the rest of the NL2SQL suite runs
on both databases), the connection is read-only, and the statement timeout holds.

The server is the session's one PostgreSQL (tests/postgres.py); without one these tests skip.
"""

from __future__ import annotations

import pytest
from nl2sql_fixtures import MARKER, leaked, make_metadata_db
from sqlalchemy import text
from test_nl2sql_guard import NEUTRALISED

from sieve.nl2sql.executor import SQLExecutionError, execute
from sieve.nl2sql.guard import SQLRejected, guard
from sieve.nl2sql.schema import metadata_allowlist
from sieve.nl2sql.service import select_documents

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg(postgres_server, tmp_path_factory):
    db = make_metadata_db(tmp_path_factory.mktemp("pg"), postgres_server.create_database())
    yield db.engine
    db.engine.dispose()


@pytest.mark.parametrize("sql", NEUTRALISED, ids=lambda s: s[:60])
def test_hostile_statement_is_refused_or_leaks_nothing_on_postgres(pg, sql):
    try:
        guarded = guard(sql, metadata_allowlist(), tenant="t1", dialect="postgres", max_rows=100)
        result = execute(pg, guarded, max_rows=1000)
    except (SQLRejected, SQLExecutionError):
        return  # read as PostgreSQL, some are refused or fail (SQLite-only syntax); a leak never
    assert leaked(result.rows) == []
    assert "tenant_id" not in result.columns and "status" not in result.columns


def test_like_patterns_and_tags_survive_the_driver(pg):
    assert select_documents("标签是周报的文档", "t1", None, pg).doc_ids == frozenset({"zw-2023-q4", "ln-2024-weekly"})


def test_connection_is_read_only_and_time_bounded(pg):
    with pytest.raises(SQLExecutionError, match="read-only"):
        execute(pg, "DELETE FROM documents", max_rows=5)
    with pytest.raises(SQLExecutionError, match="timed out"):
        execute(pg, "SELECT pg_sleep(5)", max_rows=5, timeout_s=0.2)
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM documents WHERE title LIKE :m"), {"m": f"%{MARKER}%"}).scalar() == 3
