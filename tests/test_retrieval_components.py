"""Retrieval's components one by one on the real stack: each recall path, the cross-lingual stand-in,
the hydrator and the reranker stage, as the hybrid retriever composes them."""

from __future__ import annotations

import asyncio

import pytest

from sieve.degraded import Degraded
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.crosslingual import CrossLingualStandIn
from sieve.retrievers.faults import Faults
from sieve.retrievers.fusion import FusedChunk
from sieve.retrievers.hybrid import query_embedder
from sieve.retrievers.hydrate import Hydrator
from sieve.retrievers.paths import Bm25Path, DensePath, GraphPath, ImagePath, Lanes
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.rerank import RerankerKind, Rerankers, RerankMode, reranked_head
from sieve.retrievers.types import Hit, QueryRun
from sieve.stores.catalog import get_kb
from sieve.stores.metadata import Chunk, Document, DocumentStatus
from sieve.stores.types import SearchFilter


@pytest.fixture
def flt(stack, sample_kb) -> SearchFilter:
    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    with stack.sessions() as session:
        return SearchFilter("t1", get_kb(session, "t1", "demo").id)


@pytest.fixture
def lanes():
    lanes = Lanes()
    yield lanes
    lanes.close()


def filenames(stack, chunk_ids) -> list[str]:
    with stack.sessions() as session:
        by_chunk = dict(session.query(Chunk.id, Document.filename).join(Document, Document.id == Chunk.doc_id)
                        .filter(Chunk.id.in_(list(chunk_ids))).all())
    return [by_chunk[c] for c in chunk_ids]


def test_each_recall_path_searches_a_query_run(stack, flt, lanes):
    faults = Faults()
    embedder = query_embedder(stack, faults)
    profile = RetrievalProfile()
    try:
        bm25_run = QueryRun("Apple Inc. Cupertino", flt, profile)
        bm25 = asyncio.run(Bm25Path(stack, faults, lanes).search(bm25_run))
        assert filenames(stack, [c.chunk_id for c in bm25])[0] == "apple-inc.md"

        dense_run = QueryRun("where are apples grown in China", flt, profile)
        dense = asyncio.run(DensePath(stack, embedder, faults, lanes).search(dense_run))
        assert filenames(stack, [c.chunk_id for c in dense])[0] == "shandong-apples.md"
        # the query embedding is kept for relevance and timed apart from the vector search
        assert dense_run.query_vector is not None and "embed_query" in dense_run.timings

        graph_run = QueryRun("Apple Inc.", flt, profile)
        assert asyncio.run(GraphPath(stack, faults, lanes).search(graph_run)) == []
        # nothing was extracted: the path says so if it answers
        assert graph_run.on_answer == {"graph": [Degraded.GRAPH_EMPTY]}

        assert ImagePath(stack, faults, lanes).unconfigured() is Degraded.IMAGE_NOT_CONFIGURED
        assert asyncio.run(ImagePath(stack, faults, lanes).warm_up()) is False
    finally:
        embedder.close()


def test_a_dense_path_behind_an_open_breaker_reports_it_without_running(stack, flt, lanes):
    from sieve.retrievers.paths import PathNotRun

    embedder = query_embedder(stack, Faults())
    embedder.trip("error")
    run = QueryRun("Apple Inc.", flt, RetrievalProfile())
    try:
        with pytest.raises(PathNotRun):
            asyncio.run(DensePath(stack, embedder, Faults(), lanes).search(run))
    finally:
        embedder.close()
    assert run.degraded == [Degraded.EMBEDDER_CIRCUIT_OPEN]


def test_the_stand_in_goes_to_on_topic_passages_in_the_other_script(stack, flt, lanes):
    faults = Faults()
    embedder = query_embedder(stack, faults)
    run = QueryRun("苹果公司", flt, RetrievalProfile())
    try:
        per_path = {"bm25": asyncio.run(Bm25Path(stack, faults, lanes).search(run)),
                    "dense": asyncio.run(DensePath(stack, embedder, faults, lanes).search(run))}
    finally:
        embedder.close()
    stood_in = CrossLingualStandIn(stack.sessions).apply(run.query, per_path)
    english = set(filenames(stack, list(CrossLingualStandIn(stack.sessions).other_script_chunks(
        run.query, [c.chunk_id for c in per_path["dense"]]))))
    assert english == {"apple-inc.md", "photosynthesis.txt", "marathon.txt"}
    assert stood_in.unseen is not None
    assert filenames(stack, list(stood_in.unseen["bm25"])) == ["apple-inc.md"]
    # fusion ranks by the aligned dense score; hits report the cosine
    fused = [FusedChunk(c.chunk_id, c.doc_id, c.score, path_scores={"dense": c.score}) for c in stood_in.per_path["dense"]]
    stood_in.report_cosines(fused)
    assert {f.chunk_id: f.path_scores["dense"] for f in fused} == {c.chunk_id: c.score for c in per_path["dense"]}


def test_the_hydrator_keeps_ready_documents_of_the_filter_only(stack, flt):
    with stack.sessions() as session:
        rows = session.query(Chunk.id, Chunk.doc_id, Document.filename).join(Document, Document.id == Chunk.doc_id).all()
    fused = [FusedChunk(chunk_id, doc_id, 1.0 - i / 100) for i, (chunk_id, doc_id, _) in enumerate(rows)]
    hydrator = Hydrator(stack)
    hits = hydrator.hydrate(fused, flt, 3)
    assert [h.chunk_id for h in hits] == [f.chunk_id for f in fused[:3]] and all(h.text and h.filename for h in hits)
    assert hydrator.hydrate(fused, SearchFilter("t2", flt.kb), 3) == []  # another tenant's filter
    with stack.sessions.begin() as session:  # a document mid-re-ingest is not shown
        session.get(Document, rows[0].doc_id).status = DocumentStatus.INDEXING
    assert rows[0].doc_id not in {h.doc_id for h in hydrator.hydrate(fused, flt, len(fused))}


def test_reranked_head_reorders_only_what_was_scored():
    hits = [Hit(chunk_id=c, doc_id=c, text=c, score=0.0) for c in "abcd"]
    ordered = reranked_head(hits, [0.1, 0.9, 0.5], RerankMode.REPLACE)
    assert [h.chunk_id for h in ordered] == ["b", "c", "a", "d"]
    assert [h.relevance for h in ordered] == [0.9, 0.5, 0.1, None]


def test_rerankers_are_built_once_per_kind(stack, lanes):
    rerankers = Rerankers(stack, stack.embedder, Faults(), lanes)
    try:
        assert asyncio.run(rerankers.get(RerankerKind.NONE)) is None
        first = asyncio.run(rerankers.get(RerankerKind.EMBEDDING))
        assert asyncio.run(rerankers.get(RerankerKind.EMBEDDING)) is first
        scores = asyncio.run(first.ascore("apples from Shandong", ["山东苹果产区", "marathon running"]))
        assert scores[0] > scores[1]
    finally:
        rerankers.close()
