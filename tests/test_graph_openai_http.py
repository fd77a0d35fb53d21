"""ChatOpenAI over HTTP against a loopback OpenAI-wire server: streaming, timeout and server errors."""

from __future__ import annotations

import pytest
from graph_support import sample_context
from openai_wire import OpenAIWire, serve

from sieve.graphs.agentic_rag.runner import stream_answer
from sieve.models.chat import build_chat_model
from sieve.settings import Settings


@pytest.fixture(scope="module")
def wire():
    wire = OpenAIWire()
    with serve(wire.app) as url:
        wire.base_url = f"{url}/v1"
        yield wire


def llm_context(wire, timeout_s: float = 10.0):
    llm = build_chat_model(Settings(llm_base_url=wire.base_url, llm_model="served-model", llm_timeout_s=timeout_s))
    return sample_context(llm=llm, llm_timeout_s=timeout_s)


async def run(question, ctx):
    events = [e async for e in stream_answer(question, kb="samples", context=ctx)]
    return events[-1].data, [e.data["text"] for e in events if e.type == "token"]


async def test_answer_tokens_stream_over_http_and_decisions_use_tool_calls(wire):
    wire.mode, wire.requests[:] = "ok", []
    result, tokens = await run("What does Apple Inc. do?", llm_context(wire))
    assert result["degraded"] == [] and result["route"] == "kb"
    assert tokens == ["Apple designs ", "and sells ", "consumer electronics. ", "[1]"]
    assert result["answer"] == "".join(tokens) and result["citations"][0]["filename"] == "apple-inc.md"
    asked_tools = [r["tools"][0]["function"]["name"] for r in wire.requests if r.get("tools")]
    assert asked_tools == ["RouteDecision", "GradeDecision"]
    assert wire.requests[-1]["stream"] is True and wire.requests[-1]["model"] == "served-model"


async def test_slow_server_times_out_into_a_deterministic_answer(wire):
    wire.mode, wire.requests[:] = "slow", []
    result, _ = await run("What does Apple Inc. do?", llm_context(wire, timeout_s=0.5))
    assert result["degraded"] == ["llm_timeout"]
    assert not result["refused"] and "Cupertino" in result["answer"] and "[1]" in result["answer"]
    assert len(wire.requests) == 1  # the rest of the turn did not wait on the same server again


async def test_server_error_falls_back_to_a_deterministic_answer(wire):
    wire.mode, wire.requests[:] = "error", []
    result, _ = await run("苹果公司是做什么的", llm_context(wire))
    assert result["degraded"] == ["llm_error"]
    assert not result["refused"] and result["citations"][0]["filename"] == "apple-china.md"
