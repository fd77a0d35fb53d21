"""Each storage role switches between its embedded and its production engine by settings alone.

For every combination that can run here (metadata DB: SQLite or PostgreSQL; vectors: Qdrant Edge or the
Qdrant adapter on qdrant-client's local mode; text: tantivy, and OpenSearch when SIEVE_OPENSEARCH_URL
names a cluster) the same code ingests, searches and deletes through a `Stack` built from settings.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from postgres import on_sqlite_and_postgres
from sqlalchemy import func, select

from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.catalog import get_kb
from sieve.stores.metadata import Chunk, Document
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

pytestmark = pytest.mark.integration

TEXT_BACKENDS = ["tantivy", *(["opensearch"] if os.environ.get("SIEVE_OPENSEARCH_URL") else [])]


def search(stack: Stack, query: str, flt: SearchFilter, paths: list[str]) -> list[str]:
    retriever = HybridRetriever(stack)
    try:
        profile = retriever.load_profile(flt.kb).merged(paths=paths, top_k=5)
        return [h.filename for h in asyncio.run(retriever.retrieve(query, flt, profile=profile)).hits]
    finally:
        retriever.close()


@on_sqlite_and_postgres
@pytest.mark.parametrize("vector_backend", ["qdrant_edge", "qdrant"])
@pytest.mark.parametrize("text_backend", TEXT_BACKENDS)
def test_ingest_search_delete_through_the_configured_engines(
    database_url, embedder, sample_kb, tmp_path, text_backend, vector_backend
):
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        database_url=database_url,
        text_backend=text_backend,
        vector_backend=vector_backend,
        qdrant_path=tmp_path / "qdrant",  # read only by the qdrant backend
        opensearch_index_prefix=f"sieve-test-{uuid.uuid4().hex[:8]}",  # read only by the opensearch backend
    )
    with Stack(settings, embedder=embedder) as stack:
        report = Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
        assert report.added == 8 and not report.failed
        with stack.sessions() as session:
            flt = SearchFilter("t1", get_kb(session, "t1", "demo").id)
            apple, apple_chunks = session.execute(
                select(Document.id, Document.chunk_count).where(Document.filename == "apple-inc.md")
            ).one()

        # dense carries the Chinese query to the English page; BM25 finds the exact term
        assert {"apple-inc.md", "apple-china.md"} <= set(search(stack, "苹果公司", flt, ["bm25", "dense"]))
        assert search(stack, "Pheidippides", flt, ["bm25"])[0] == "marathon.txt"

        assert Ingestor(stack).delete_documents("t1", flt.kb, [apple]) == 1
        assert "apple-inc.md" not in search(stack, "Apple Inc. Cupertino iPhone", flt, ["bm25", "dense"])
        with stack.sessions() as session:
            chunks = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.kb_id == flt.kb))
        assert stack.text.count(flt) == stack.vectors.count(flt) == chunks == report.chunks - apple_chunks

    # the data went where the settings said, and nowhere else
    assert (home / "metadata.db").exists() == (database_url is None)
    assert (home / "text").exists() == (text_backend == "tantivy")
    assert (home / "vectors").exists() == (vector_backend == "qdrant_edge")
    assert (tmp_path / "qdrant").exists() == (vector_backend == "qdrant")


def test_a_production_backend_without_its_address_is_a_clear_error(tmp_path, embedder):
    with Stack(Settings(home=tmp_path, vector_backend="qdrant", qdrant_url=None), embedder=embedder) as stack:
        with pytest.raises(ValueError, match="SIEVE_QDRANT_URL"):
            stack.vectors
