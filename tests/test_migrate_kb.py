"""`sieve migrate --to-config prod.toml` moves a knowledge base from the embedded engines into PostgreSQL and
the Qdrant adapter (qdrant-client local mode as the server's stand-in): search over BM25, dense vectors and
the knowledge graph answers the same before and after, no chunk is embedded again, and a second run finds
nothing left to do."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings, load_profile
from sieve.stores.catalog import get_kb, get_or_create_kb
from sieve.stores.metadata import Document
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

pytestmark = pytest.mark.integration

QUERIES = [
    "苹果公司", "Who runs Apple?", "马拉松的起源", "Pheidippides", "光合作用怎么进行",
    "tea culture", "华为的总部在哪里", "山东的苹果", "smartphone sales", "绿茶和红茶的区别",
]


def answers(settings: Settings, embedder) -> dict[str, list[str]]:
    """Each query's hybrid (BM25 + dense, fused) chunk ids, in order."""
    with Stack(settings, embedder=embedder) as stack:
        with stack.sessions() as session:
            flt = SearchFilter("default", get_kb(session, "default", "demo").id)
        retriever = HybridRetriever(stack)
        try:
            return {q: [h.chunk_id for h in asyncio.run(retriever.retrieve(q, flt, k=5)).hits] for q in QUERIES}
        finally:
            retriever.close()


@pytest.fixture
def source(tmp_path, embedder, sample_kb) -> Path:
    """A home with the sample KB as `demo`, searched over BM25, dense vectors and its knowledge graph."""
    home = tmp_path / "embedded"
    with Stack(Settings(home=home), embedder=embedder) as stack:
        with stack.sessions.begin() as session:
            get_or_create_kb(session, "default", "demo").profile = {
                "graph_extraction": True, "paths": ["bm25", "dense", "graph"],
            }
        assert Ingestor(stack).ingest_paths([sample_kb], "demo", "default").added == 8
    return home


def test_migrate_into_postgres_and_qdrant_keeps_every_answer(source, postgres_server, sieve, embedder, tmp_path):
    before = answers(Settings(home=source), embedder)
    assert all(before.values())

    prod = tmp_path / "prod.toml"
    prod.write_text(
        f'home = "{tmp_path / "prod-home"}"\n'
        f'database_url = "{postgres_server.create_database()}"\n'
        'vector_backend = "qdrant"\n'
        f'qdrant_path = "{tmp_path / "qdrant"}"\n',
        encoding="utf-8",
    )
    report = json.loads(sieve(source, "migrate", "--kb", "demo", "--to-config", str(prod), "--json").stdout)
    assert (report["documents"], report["skipped"], report["embedded"]) == (8, 0, 0) and report["relations"] > 0
    assert report["target_chunks"] == report["target_text"] == report["target_vectors"] == report["chunks"] > 0

    target = load_profile(prod)
    assert answers(target, embedder) == before
    with Stack(target, embedder=embedder) as stack, stack.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 8

    again = json.loads(sieve(source, "migrate", "--kb", "demo", "--to-config", str(prod), "--json").stdout)
    assert (again["documents"], again["skipped"], again["target_vectors"]) == (0, 8, report["chunks"])

    # the migrated KB is served by naming the profile: configuration, not code
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_")} | {"SIEVE_CONFIG": str(prod)}
    served = subprocess.run(
        [sys.executable, "-m", "sieve.cli", "search", "苹果公司", "--kb", "demo", "-k", "5", "--paths", "bm25,dense,graph",
         "--json"],
        env=env, capture_output=True, text=True, check=True, timeout=300,
    )
    assert [h["chunk_id"] for h in json.loads(served.stdout)] == before["苹果公司"]


def test_migrating_into_the_database_in_use_is_refused(source, sieve, tmp_path):
    same = tmp_path / "same.toml"
    same.write_text(f'home = "{source}"\nvector_backend = "qdrant"\nqdrant_path = "{tmp_path / "q"}"\n', encoding="utf-8")
    done = sieve(source, "migrate", "--kb", "demo", "--to-config", str(same), check=False)
    assert done.returncode == 1 and "metadata DB in use" in done.stderr
