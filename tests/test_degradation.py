"""The degradation ladder on the real stack: faults injected at component boundaries, reported in `degraded`."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sieve.degraded import Degraded
from sieve.errors import ConfigurationError
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.faults import Fault, FaultKind, Faults, InjectedFault
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.rerank import RerankerKind
from sieve.stores.catalog import get_kb
from sieve.stores.types import SearchFilter

QUERY = "Apple iPhone company"


@pytest.fixture
def flt(stack, sample_kb) -> SearchFilter:
    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    with stack.sessions() as session:
        return SearchFilter("t1", get_kb(session, "t1", "demo").id)


def retrieve(stack, flt, faults: str = "", query: str = QUERY, **profile):
    retriever = HybridRetriever(stack, faults=Faults.parse(faults))
    try:
        chosen = retriever.load_profile(flt.kb).merged(**profile)
        return asyncio.run(retriever.retrieve(query, flt, profile=chosen))
    finally:
        retriever.close()


def test_fault_specs_parse_and_bad_ones_are_refused():
    faults = Faults.parse("dense:delay=2s, reranker:error,embedder:delay=500ms,bm25:error")
    assert faults.get("dense") == Fault(FaultKind.DELAY, 2.0)
    assert faults.get("embedder") == Fault(FaultKind.DELAY, 0.5)
    assert faults.get("reranker") == faults.get("bm25") == Fault(FaultKind.ERROR)
    assert Faults.parse("") == Faults() and Faults.parse(None).get("dense") is None
    for bad in ("cache:error", "dense:delay", "dense:delay=2 minutes", "dense:crash", "dense"):
        with pytest.raises(ValueError, match="SIEVE_FAULTS"):
            Faults.parse(bad)


def test_faults_come_from_settings(stack):
    stack.settings = stack.settings.model_copy(update={"faults": "bm25:error"})
    assert HybridRetriever(stack).faults.get("bm25") == Fault(FaultKind.ERROR)


def test_a_slow_embedder_leaves_bm25_answering_within_the_total_budget(stack, flt):
    result = retrieve(stack, flt, "embedder:delay=4s", total_budget_ms=1500)
    assert result.hits and all(set(h.ranks) == {"bm25"} for h in result.hits)
    assert {"embedder_timeout", "dense_timeout"} <= set(result.degraded)
    assert "Apple" in result.hits[0].text


def test_a_slow_dense_engine_degrades_to_bm25(stack, flt):
    result = retrieve(stack, flt, "dense:delay=4s", path_budget_ms=1500)
    assert result.degraded == ["dense_timeout"]
    assert result.hits and all(set(h.ranks) == {"bm25"} for h in result.hits)
    # the embedder answered, so the relevance of BM25 hits is still the query-passage cosine
    assert all(h.relevance is not None for h in result.hits)


def test_a_failing_backend_leaves_the_remaining_paths(stack, flt, caplog):
    caplog.set_level(logging.WARNING, logger="sieve.retrievers.hybrid")
    result = retrieve(stack, flt, "bm25:error")
    assert result.degraded == ["bm25_error"]
    # the operator sees why: the failure is logged with its traceback where it degraded
    assert [type(r.exc_info[1]) for r in caplog.records if r.exc_info] == [InjectedFault]
    assert result.hits and all(set(h.ranks) == {"dense"} for h in result.hits)
    both = retrieve(stack, flt, "bm25:error,dense:error")
    # no path answered: retrieval as a whole failed, which the graph refuses as unavailable
    assert both.hits == [] and sorted(both.degraded) == ["bm25_error", "dense_error", "retrieval_error"]


def test_a_failing_reranker_yields_the_fused_order(stack, flt):
    fused = retrieve(stack, flt)
    failed = retrieve(stack, flt, "reranker:error", reranker=RerankerKind.EMBEDDING, relevance_threshold=0.9)
    assert failed.degraded == ["rerank_error"]
    assert [h.chunk_id for h in failed.hits] == [h.chunk_id for h in fused.hits]
    # relevance falls back to the cosine, and the threshold calibrated for the reranker is not passed on
    assert [h.relevance for h in failed.hits] == [h.relevance for h in fused.hits]
    assert failed.relevance_threshold is None


def test_an_unreachable_rerank_endpoint_yields_the_fused_order(stack, flt):
    stack.settings = stack.settings.model_copy(update={"reranker_base_url": "http://127.0.0.1:9/v1"})
    fused = retrieve(stack, flt)
    failed = retrieve(stack, flt, reranker=RerankerKind.RERANK_API)
    assert failed.degraded == ["rerank_error"]
    assert [h.chunk_id for h in failed.hits] == [h.chunk_id for h in fused.hits]


def test_an_unconfigured_reranker_is_a_configuration_error_naming_its_setting(stack, flt):
    # not a `rerank_error` on every query: the profile asks for a model this deployment does not have
    with pytest.raises(ConfigurationError, match="reranker=flag needs SIEVE_RERANKER_MODEL_PATH"):
        retrieve(stack, flt, reranker=RerankerKind.FLAG)


def test_a_slow_reranker_times_out_to_the_fused_order(stack, flt):
    fused = retrieve(stack, flt)
    slow = retrieve(stack, flt, "reranker:delay=2s", reranker=RerankerKind.EMBEDDING, rerank_budget_ms=100)
    assert slow.degraded == ["rerank_timeout"]
    assert [h.chunk_id for h in slow.hits] == [h.chunk_id for h in fused.hits]


def test_the_embedding_reranker_orders_by_cosine_and_passes_its_threshold(stack, flt):
    result = retrieve(stack, flt, query="where are apples grown in China", reranker=RerankerKind.EMBEDDING,
                      relevance_threshold=0.81, top_k=5)
    assert result.degraded == [] and result.relevance_threshold == 0.81
    relevance = [h.relevance for h in result.hits]
    assert relevance == sorted(relevance, reverse=True)
    plain = retrieve(stack, flt, query="where are apples grown in China", top_k=5)
    assert plain.relevance_threshold is None  # no threshold in the stored profile


async def test_stuck_dense_calls_do_not_starve_bm25(stack, flt):
    """Timed-out embedder threads keep running; they occupy the embedder's own pool, not BM25's."""
    retriever = HybridRetriever(stack, faults=Faults.parse("embedder:delay=4s"))
    profile = retriever.load_profile(flt.kb).merged(path_budget_ms=1500)
    try:
        results = await asyncio.gather(*(retriever.retrieve(QUERY, flt, profile=profile) for _ in range(6)))
    finally:
        retriever.close()
    for result in results:
        assert "bm25_timeout" not in result.degraded
        # each waited out the dense budget, or came after one that did and found the breaker open
        assert "dense_timeout" in result.degraded or result.degraded == ["embedder_circuit_open"]
        assert result.hits and all(set(h.ranks) == {"bm25"} for h in result.hits)


async def test_one_embedder_timeout_opens_the_breaker_and_the_next_queries_do_not_wait(stack, flt):
    retriever = HybridRetriever(stack, faults=Faults.parse("embedder:delay=4s"))
    profile = retriever.load_profile(flt.kb).merged(total_budget_ms=1500)
    try:
        first = await retriever.retrieve(QUERY, flt, profile=profile)
        second = await retriever.retrieve(QUERY, flt, profile=profile)
    finally:
        retriever.close()
    assert "embedder_circuit_open" not in first.degraded and "embedder_timeout" in first.degraded
    # the breaker answers for the stuck model: nothing waited, so only the open breaker is reported
    assert second.degraded == ["embedder_circuit_open"]
    assert second.hits and all(set(h.ranks) == {"bm25"} for h in second.hits)


def test_a_whole_question_under_a_stuck_embedder_is_answered_from_bm25(stack, flt):
    """The embedder fault reaches every node that embeds: routing falls back to the KB, grading to evidence."""
    from sieve.graphs.agentic_rag.runner import ask
    from sieve.graphs.shared.wiring import build_context

    stack.settings = stack.settings.model_copy(update={"faults": "embedder:delay=4s", "embedder_timeout_ms": 200})
    with stack.sessions.begin() as session:
        get_kb(session, "t1", "demo").profile = {"total_budget_ms": 1500}
    context = build_context(stack)
    try:
        result = asyncio.run(ask("What does Apple Inc. do?", kb="demo", tenant="t1", context=context,
                                 settings=stack.settings))
    finally:
        context.retriever.hybrid.close()
    assert result.route == "kb" and not result.refused
    assert result.citations and result.citations[0]["filename"] == "apple-inc.md"
    # routing waited out the embedder once; retrieval and grading then found the breaker open
    assert result.degraded == ["embedder_timeout", "embedder_circuit_open", "grade_unscored"]


async def test_the_breaker_fails_fast_while_open_and_tries_again_after_its_cooldown(embedder):
    from sieve.models.guarded_embedder import BreakerPolicy, EmbedderUnavailable, GuardedEmbedder

    failing = GuardedEmbedder(Faults.parse("embedder:error").wrap("embedder", embedder, ("embed_queries",)))
    with pytest.raises(EmbedderUnavailable) as first:
        await failing.aembed_queries(["苹果"], 5.0)
    with pytest.raises(EmbedderUnavailable) as second:
        await failing.aembed_queries(["苹果"], 5.0)
    assert (first.value.flags, second.value.flags) == ([Degraded.EMBEDDER_ERROR], [Degraded.EMBEDDER_CIRCUIT_OPEN])

    healthy = GuardedEmbedder(embedder, BreakerPolicy(cooldown_s=0.0))
    healthy.trip("timeout")  # a cooldown of 0 s is over at once: the next call reaches the model
    vector = await healthy.aembed_queries(["苹果"], 5.0)
    assert vector.shape == (1, embedder.dim) and abs(float(vector[0] @ embedder.embed_queries(["苹果"])[0]) - 1) < 1e-5


def test_a_profile_without_the_dense_path_still_reports_cosine_relevance(stack, flt, caplog):
    plain = retrieve(stack, flt, paths=["bm25"])
    assert plain.degraded == [] and plain.hits and all(set(h.ranks) == {"bm25"} for h in plain.hits)
    assert all(h.relevance is not None for h in plain.hits)  # grading need not embed the passages again
    caplog.set_level(logging.WARNING, logger="sieve.models.guarded_embedder")
    failing = retrieve(stack, flt, "embedder:error", paths=["bm25"])
    assert failing.degraded == ["embedder_error"] and all(h.relevance is None for h in failing.hits)
    assert [type(r.exc_info[1]) for r in caplog.records if r.exc_info] == [InjectedFault]
