"""`langgraph dev` serves the compiled graph (langgraph.json): stream a run with langgraph-sdk, continue the thread.

The default context has no retriever until the hybrid retriever is wired into
`graphs/context.py:build_default_context`, so the server builds its context through
SIEVE_GRAPH_CONTEXT_FACTORY=graph_support:dev_context (the sample KB in memory).
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
from langgraph_sdk import get_client

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "SIEVE_HOME": str(tmp_path_factory.mktemp("dev-home")),
        "SIEVE_GRAPH_CONTEXT_FACTORY": "graph_support:dev_context",
        "PYTHONPATH": str(REPO / "tests"),
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
    assert [m["type"] for m in state["messages"]] == ["human", "ai", "human", "ai"]
