"""The PostgreSQL path: guarded SQL on a real server, read-only, under statement_timeout.

Uses SIEVE_TEST_POSTGRES_URL when set; otherwise starts a throwaway cluster with the local PostgreSQL
binaries (as the `postgres` user when running as root). Skipped when neither is possible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from nl2sql_fixtures import MARKER, NOW, leaked, make_metadata_db
from sqlalchemy import select, text

from sieve.nl2sql.executor import SQLExecutionError, execute
from sieve.nl2sql.service import narrow, run_sql
from sieve.stores.database import init_db, make_engine
from sieve.stores.metadata import Base, Document, KnowledgeBase, Tenant

pytestmark = pytest.mark.integration
psycopg = pytest.importorskip("psycopg")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


@pytest.fixture(scope="module")
def pg_url():
    if url := os.environ.get("SIEVE_TEST_POSTGRES_URL"):
        yield url
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries")
    folder = Path(tempfile.mkdtemp(prefix="sieve-pg-"))  # not under pytest's root-only temp folder
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", 55000 + os.getpid() % 1000
    options = f"-k {folder} -p {port} -c listen_addresses=''"
    for command in (
        [initdb, "-D", str(data), "-A", "trust", "-U", "sieve"],
        [pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
    ):
        done = subprocess.run([*as_user, *command], capture_output=True, text=True)
        if done.returncode:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip(f"cannot start a throwaway PostgreSQL: {done.stderr.strip()[:200]}")
    try:
        yield f"postgresql+psycopg://sieve@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def pg(pg_url, tmp_path_factory):
    """The same two-tenant rows as the SQLite fixture, copied into PostgreSQL."""
    source = make_metadata_db(tmp_path_factory.mktemp("pg-source"))
    engine = make_engine(pg_url)
    Base.metadata.drop_all(engine)
    sessions = init_db(engine)
    with source.engine.connect() as src, sessions() as dst:
        for model in (Tenant, KnowledgeBase, Document):
            rows = [dict(r._mapping) for r in src.execute(select(model.__table__))]
            dst.execute(model.__table__.insert(), rows)
        dst.commit()
    yield engine
    engine.dispose()


def test_article_example_on_postgres(pg):
    result = narrow("找一下张伟在2023年关于大模型训练方面的工作总结", "t1", "kb-rd", pg, now=NOW)
    assert result.doc_ids == frozenset({"zw-2023-train", "zw-2023-q4"}) and result.content_query == "大模型训练 工作总结"


def test_like_patterns_and_tags_survive_the_driver(pg):
    assert narrow("我上个月上传了哪些叫周报的文件", "t1", "kb-rd", pg, now=NOW).doc_ids == frozenset({"ln-2024-weekly"})
    assert narrow("标签是周报的文档", "t1", None, pg, now=NOW).doc_ids == frozenset({"zw-2023-q4", "ln-2024-weekly"})


def test_tenant_predicate_holds_on_postgres(pg):
    _, result = run_sql("SELECT *, meta ->> 'department' AS dept FROM documents WHERE 1 = 1 OR 1 = 1", "t1", pg)
    assert len(result.rows) == 6 and leaked(result.rows) == []


def test_connection_is_read_only_and_time_bounded(pg):
    with pytest.raises(SQLExecutionError, match="read-only"):
        execute(pg, "DELETE FROM documents", max_rows=5)
    with pytest.raises(SQLExecutionError, match="timed out"):
        execute(pg, "SELECT pg_sleep(5)", max_rows=5, timeout_s=0.2)
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM documents WHERE title LIKE :m"), {"m": f"%{MARKER}%"}).scalar() == 3
