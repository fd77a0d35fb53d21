"""The embedder's breaker under load: queue time is not model time.

A slow but healthy embedder (every model call takes 100 ms more, injected through `SIEVE_FAULTS`)
with more callers than its two workers can serve within their budget: the late ones are
`embedder_busy`, and the breaker stays closed. A stuck one still opens it (tests/test_degradation.py).
Calls that wait together are embedded in one model call, with the vectors each would get alone.
"""

from __future__ import annotations

import asyncio

import numpy as np

from sieve.degraded import Degraded
from sieve.ingest.pipeline import Ingestor
from sieve.models.guarded_embedder import (
    BreakerPolicy,
    EmbedderUnavailable,
    GuardedEmbedder,
)
from sieve.retrievers.faults import Faults
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.catalog import get_kb
from sieve.stores.types import SearchFilter

SLOW = "embedder:delay=100ms"


def slow(embedder, **policy) -> GuardedEmbedder:
    return GuardedEmbedder(Faults.parse(SLOW).wrap("embedder", embedder, ("embed_queries", "embed_passages")),
                           BreakerPolicy(**policy))


async def outcomes(guarded: GuardedEmbedder, questions: list[str], timeout_s: float) -> list[str]:
    async def one(question: str) -> str:
        try:
            await guarded.aembed_queries([question], timeout_s)
        except EmbedderUnavailable as unavailable:
            return unavailable.reason
        return "ok"

    return await asyncio.gather(*(one(q) for q in questions))


async def test_callers_queued_past_their_budget_are_busy_and_the_breaker_stays_closed(embedder):
    guarded = slow(embedder, max_batch=1)
    try:
        # 30 model calls of 100 ms on 2 workers take 1.5 s at best: with a 1 s budget some must wait it out
        results = await outcomes(guarded, [f"question {i}" for i in range(30)], 1.0)
        assert set(results) <= {"ok", "busy"} and "busy" in results and "ok" in results
        assert guarded.health() == {"state": "ok", "circuit_open": False} and guarded.trips == 0
        # the next caller is served: nothing was judged slow
        assert (await guarded.aembed_queries(["苹果"], 5.0)).shape == (1, guarded.dim)
        assert EmbedderUnavailable("busy").flags == [Degraded.EMBEDDER_BUSY]
    finally:
        guarded.close()


async def test_a_full_queue_refuses_at_once_without_opening_the_breaker(embedder):
    guarded = slow(embedder, max_waiting=3, max_batch=1)
    try:
        results = await outcomes(guarded, [f"question {i}" for i in range(12)], 30.0)
        # at most 2 running and 3 waiting were admitted (all answer within the long budget); the rest were refused
        assert 3 <= results.count("ok") <= 5 and results.count("ok") + results.count("busy") == 12
        assert guarded.trips == 0
    finally:
        guarded.close()


class Counting:
    """The embedder, counting its model calls."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.dim, self.tokenizer = inner.name, inner.dim, inner.tokenizer

    def embed_queries(self, texts):
        self.calls += 1
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        self.calls += 1
        return self.inner.embed_passages(texts)


async def test_calls_that_wait_together_share_one_model_call_and_get_their_own_vectors(embedder):
    counting = Counting(embedder)
    guarded = GuardedEmbedder(Faults.parse(SLOW).wrap("embedder", counting, ("embed_queries",)))
    questions = [f"question number {i}" for i in range(30)]
    try:
        vectors = await asyncio.gather(*(guarded.aembed_queries([q], 30.0) for q in questions))
        passages = await guarded.aembed_passages(["苹果", "apple"], 30.0)
    finally:
        guarded.close()
    # 31 calls without batching; here the first ran alone and those waiting behind it went together
    assert counting.calls < 10
    alone = embedder.embed_queries(questions)
    for question, vector, single in zip(questions, vectors, alone, strict=True):
        assert np.allclose(vector[0], single, atol=1e-4), question
    assert np.allclose(passages, embedder.embed_passages(["苹果", "apple"]), atol=1e-4)


async def test_many_concurrent_retrievals_on_a_slow_embedder_never_open_the_breaker(stack, sample_kb):
    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "demo").id)
    retriever = HybridRetriever(stack, faults=Faults.parse(SLOW))
    retriever.embedder.policy = BreakerPolicy(max_batch=1)  # one question per model call: they queue
    try:
        profile = retriever.load_profile(flt.kb)
        questions = [f"Apple iPhone company {i}" for i in range(40)]
        results = await asyncio.gather(*(retriever.retrieve(q, flt, profile=profile) for q in questions))
    finally:
        retriever.close()
    flags = {flag for result in results for flag in result.degraded}
    assert not flags & {"embedder_timeout", "embedder_circuit_open"}
    assert retriever.embedder.trips == 0
    # queued past the embedding budget, a question is answered from BM25 and says why
    assert all(result.hits for result in results)
    assert "embedder_busy" in flags
    assert all("dense" not in hit.ranks for r in results if "embedder_busy" in r.degraded for hit in r.hits)
