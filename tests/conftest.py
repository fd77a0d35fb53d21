"""Shared fixtures: one real offline embedder per session, and a fresh stack per test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from postgres import fresh_database, start_postgres

from sieve.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE_KB = REPO / "samples" / "kb"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    """The offline default embedder, built once (its model conversion is cached in this home)."""
    from sieve.models.factory import build_embedder

    return build_embedder(Settings(home=tmp_path_factory.mktemp("models-home")))


@pytest.fixture(scope="session")
def postgres_server():
    """The session's one PostgreSQL server, started on first use (see tests/postgres.py)."""
    yield from start_postgres()


@pytest.fixture
def database_url(request) -> str | None:
    """The metadata DB of this test: None is the embedded default (SQLite under the home); tests marked
    `on_sqlite_and_postgres` run a second time on a fresh database of the session's PostgreSQL server."""
    return fresh_database(getattr(request, "param", "sqlite"), request)


@pytest.fixture
def database_env(database_url, monkeypatch) -> str | None:
    """`database_url` for code that reads the settings from the environment (thread store, CLI)."""
    from sieve.settings import get_settings

    if database_url is None:
        monkeypatch.delenv("SIEVE_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("SIEVE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url)


@pytest.fixture
def stack(settings, embedder):
    from sieve.stores.stack import Stack

    with Stack(settings, embedder=embedder) as s:
        yield s


@pytest.fixture
def sample_kb(tmp_path) -> Path:
    """A writable copy of the sample knowledge base."""
    target = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, target)
    return target


def run_sieve(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real `sieve` command in a subprocess, on the given home."""
    env = {**os.environ, "SIEVE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "sieve.cli", *args], env=env, capture_output=True, text=True, check=check, timeout=300
    )


@pytest.fixture(scope="session")
def sieve():
    return run_sieve


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A home with the sample knowledge base ingested as `demo` through the CLI (read-only for tests)."""
    home = tmp_path_factory.mktemp("demo-home")
    report = json.loads(run_sieve(home, "ingest", str(SAMPLE_KB), "--kb", "demo", "--json").stdout)
    assert report["added"] == 8 and report["failed"] == []
    return home
