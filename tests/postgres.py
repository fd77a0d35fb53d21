"""One real PostgreSQL server per test session, and a fresh database for each test that asks for one.

SIEVE_TEST_POSTGRES_URL points at an existing server instead (its user needs CREATEDB). Otherwise the
local server binaries (Debian's `postgresql` package, which `make test` installs) start a throwaway
cluster on a Unix socket in a temporary folder, as the `postgres` user when running as root. Without
either, the PostgreSQL cases skip and say why.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


class PostgresServer:
    """A server the tests may create databases on; `admin_url` is its maintenance database."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self._names = itertools.count(1)

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"sieve_test_{os.getpid()}_{next(self._names)}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)


def start_postgres() -> Iterator[PostgresServer]:
    """Yields a running server and stops it afterwards (pytest skips when none can run)."""
    pytest.importorskip("psycopg", reason="the `postgres` extra (psycopg) is not installed")
    if url := os.environ.get("SIEVE_TEST_POSTGRES_URL"):
        yield PostgresServer(url)
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql, or set SIEVE_TEST_POSTGRES_URL)")
    folder = Path(tempfile.mkdtemp(prefix="sieve-pg-"))  # not under pytest's root-only temp folder
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser to start PostgreSQL as `postgres`")
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", 5432
    # a throwaway cluster: durability off, no TCP (the socket lives in our own folder)
    options = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    for command in (
        [initdb, "-D", str(data), "-A", "trust", "-U", "sieve", "-E", "UTF8", "--no-locale"],
        [pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
    ):
        done = subprocess.run([*as_user, *command], capture_output=True, text=True)
        if done.returncode:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip(f"cannot start a throwaway PostgreSQL: {done.stderr.strip()[:300]}")
    try:
        yield PostgresServer(f"postgresql+psycopg://sieve@/postgres?host={folder}&port={port}")
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


DATABASES = ["sqlite", "postgres"]
# run a test on the embedded default and on a fresh PostgreSQL database (through the `database_url` fixture)
on_sqlite_and_postgres = pytest.mark.parametrize("database_url", DATABASES, indirect=True)


def fresh_database(kind: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite (the settings' default under the home), else a new database on the session's server."""
    if kind == "sqlite":
        return None
    return request.getfixturevalue("postgres_server").create_database()
