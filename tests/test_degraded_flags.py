"""Degradation flags as a client sees them: each once, only for what happened this turn, each failure logged."""

from __future__ import annotations

import logging

from graph_support import sample_context
from scripted_llm import ScriptedChatModel

from sieve.degraded import Degraded, any_timeout
from sieve.graphs.agentic_rag.runner import ask, stream_answer
from sieve.graphs.shared.context import GraphContext
from sieve.settings import Settings


class Down:
    """A retriever whose index is offline."""

    async def retrieve(self, query, flt, k):
        raise ConnectionError("index offline")


def tracebacks(caplog, logger: str) -> list[BaseException]:
    return [r.exc_info[1] for r in caplog.records if r.name == logger and r.exc_info]


async def test_a_failure_that_repeats_in_the_corrective_loop_is_flagged_once_and_logged_with_its_traceback(caplog):
    caplog.set_level(logging.WARNING)
    events = [e async for e in stream_answer("苹果公司是做什么的", kb="samples", context=GraphContext(retriever=Down()))]
    done = events[-1].data
    assert done["refused"] and done["degraded"] == ["retrieval_error"]
    # the stream reports the flag once as well
    assert [e.data["degraded"] for e in events if e.type == "degraded"] == [["retrieval_error"]]
    failures = tracebacks(caplog, "sieve.graphs.shared.nodes.retrieve")
    assert failures and all(isinstance(f, ConnectionError) for f in failures)


async def test_each_turn_of_a_thread_reports_only_its_own_flags(tmp_path):
    settings = Settings(home=tmp_path)
    failed = await ask("苹果公司是做什么的", kb="samples", thread_id="t", context=GraphContext(retriever=Down()),
                       settings=settings)
    assert failed.degraded == ["retrieval_error"]
    answered = await ask("What does Apple Inc. do?", kb="samples", thread_id="t", context=sample_context(),
                         settings=settings)
    assert not answered.refused and answered.degraded == []
    # timings are the turn's own too: one retrieval, not the previous turn's added in
    assert set(answered.timings_ms) >= {"route", "retrieve", "grade", "answer"} and "refuse" not in answered.timings_ms


async def test_an_llm_failure_is_logged_with_its_traceback(caplog):
    caplog.set_level(logging.WARNING)
    llm = ScriptedChatModel(script=[RuntimeError("model crashed")])
    result = await ask("苹果公司是做什么的", kb="samples", context=sample_context(llm=llm))
    assert result.degraded == ["llm_error"]
    assert any("model crashed" in str(f) for f in tracebacks(caplog, "sieve.graphs.shared.llm"))


def test_flags_keep_the_strings_clients_read_and_say_which_are_timeouts():
    assert Degraded("embedder_circuit_open") is Degraded.EMBEDDER_CIRCUIT_OPEN
    assert Degraded.timeout_of("dense") == "dense_timeout" and Degraded.error_of("rerank") == "rerank_error"
    assert any_timeout(["bm25_error", "llm_timeout"]) and not any_timeout(["embedder_circuit_open", "graph_empty"])
