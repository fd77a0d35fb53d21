"""The native SSE stream read with httpx: event order, headers, threads, LLM tokens, disconnects."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
from openai_wire import ANSWER_PIECES, OpenAIWire, serve
from server_support import SAMPLE_KB, add_key, load_samples, running_server, server_settings, upload

pytestmark = pytest.mark.integration


def read_events(client: httpx.Client, body: dict) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    events: list[tuple[str, dict]] = []
    with client.stream("POST", "/v1/agent/stream", json=body) as response:
        kind = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.removeprefix("data:"))))
    return response, events


def connect(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = server_settings(tmp_path_factory.mktemp("stream-home"))
    key = add_key(settings, "acme")
    with running_server(settings) as url, connect(url, key) as client:
        load_samples(client, "demo")
        yield client


def test_route_comes_before_the_first_token_and_done_comes_last(server):
    response, events = read_events(server, {"question": "What does Apple Inc. do?", "kb": "demo"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "route" and kinds.index("route") < kinds.index("token")
    assert kinds[-1] == "done" and kinds.count("done") == 1
    assert {"rewrite", "filter", "sources"} <= set(kinds)
    tokens = "".join(data["text"] for kind, data in events if kind == "token")
    done = events[-1][1]
    assert tokens == done["answer"] and "Cupertino" in tokens and done["citations"][0]["filename"] == "apple-inc.md"


def test_a_refusal_is_an_event_with_its_reason(server):
    _, events = read_events(server, {"question": "What is the boiling point of tungsten?", "kb": "demo"})
    refusal = [data for kind, data in events if kind == "refusal"]
    assert refusal and refusal[0]["reason"] and events[-1][1]["refused"]


def test_a_thread_keeps_the_conversation_for_follow_ups(server):
    _, first = read_events(server, {"question": "华为公司是做什么的", "kb": "demo", "thread_id": "t-1"})
    _, events = read_events(server, {"question": "它的总部在哪里", "kb": "demo", "thread_id": "t-1"})
    done = events[-1][1]
    assert "华为" in done["rewritten_query"] and "深圳" in done["answer"]
    _, fresh = read_events(server, {"question": "它的总部在哪里", "kb": "demo", "thread_id": "t-2"})
    assert "华为" not in fresh[-1][1]["rewritten_query"]

    # the conversation reads back turn by turn, each turn's citations opening at their signed links
    turns = server.get("/v1/agent/threads/t-1").json()["turns"]
    assert [t["question"] for t in turns] == ["华为公司是做什么的", "它的总部在哪里"]
    assert [t["answer"] for t in turns] == [first[-1][1]["answer"], done["answer"]]
    assert turns[1]["citations"] == done["citations"] and turns[1]["rewritten_query"] == done["rewritten_query"]
    link = turns[0]["citations"][0]["url"]
    assert "华为" in httpx.get(link).json()["text"]  # no API key: the signature opens the chunk
    missing = server.get("/v1/agent/threads/never-started")
    assert missing.status_code == 404 and "never-started" in missing.json()["error"]["message"]


async def test_concurrent_conversations_all_finish_and_keep_their_own_threads(server):
    async def conversation(client: httpx.AsyncClient, i: int) -> tuple[str, dict]:
        company = ["苹果公司", "华为公司"][i % 2]
        turns = []
        for question in (f"{company}是做什么的", "它的总部在哪里"):
            events = []
            body = {"question": question, "kb": "demo", "thread_id": f"concurrent-{i}"}
            async with client.stream("POST", "/v1/agent/stream", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        events.append(line.removeprefix("event:").strip())
                    elif line.startswith("data:") and events[-1] == "done":
                        turns.append(json.loads(line.removeprefix("data:")))
            assert events[-1] == "done" and "error" not in events
        return company, turns[-1]

    async with httpx.AsyncClient(base_url=server.base_url, headers=server.headers, timeout=120) as client:
        results = await asyncio.gather(*(conversation(client, i) for i in range(50)))
    for company, follow_up in results:
        assert follow_up["rewritten_query"].startswith(company[:2])  # each resolved against its own thread


@pytest.mark.parametrize(("body", "status", "reason"), [
    ({"question": "hi", "kb": "nope"}, 404, "knowledge base 'nope' does not exist"),
    ({"question": " ", "kb": "demo"}, 400, "the question is empty"),
    ({"question": "x" * 5000, "kb": "demo"}, 413, "limit is 4000"),
    ({"kb": "demo"}, 422, "question: Field required"),
])
def test_bad_requests_are_refused_before_streaming(server, body, status, reason):
    response = server.post("/v1/agent/stream", json=body)
    assert response.status_code == status and reason in response.json()["error"]["message"]


# ---- LLM mode: a loopback OpenAI-wire model; its decisions must never reach the user ------


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    wire = OpenAIWire()
    with serve(wire.app) as wire_url:
        settings = server_settings(tmp_path_factory.mktemp("llm-home"), llm_base_url=f"{wire_url}/v1",
                                   llm_model="served-model", llm_timeout_s=20)
        key = add_key(settings, "acme")
        with running_server(settings) as url, connect(url, key) as client:
            load_samples(client, "demo")
            yield client, wire, key


def test_only_the_answer_streams_as_tokens_never_the_internal_decisions(llm_server):
    client, wire, key = llm_server
    wire.mode, wire.requests[:] = "ok", []
    _, events = read_events(client, {"question": "What does Apple Inc. do?", "kb": "demo"})
    tokens = [data["text"] for kind, data in events if kind == "token"]
    assert tokens == ANSWER_PIECES  # streamed piece by piece, and nothing else
    # the decisions went to the model as structured calls (narrowing included) and none reached the tokens
    assert [r["tools"][0]["function"]["name"] for r in wire.requests if r.get("tools")] == [
        "RouteDecision", "SQLDraft", "GradeDecision"]

    wire.requests[:] = []
    chat = openai.OpenAI(base_url=f"{str(client.base_url).rstrip('/')}/v1", api_key=key, max_retries=0)
    chunks = list(chat.chat.completions.create(model="demo", stream=True,
                                               messages=[{"role": "user", "content": "What does Apple Inc. do?"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "".join(ANSWER_PIECES) and "relevant" not in text and "route" not in text
    assert chunks[-1].model_extra["sieve"]["citations"][0]["filename"] == "apple-inc.md"


def cancelled_runs(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("sieve_runs_total{") and 'outcome="cancelled"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_that_disconnects_cancels_the_run(llm_server):
    client, wire, _ = llm_server
    wire.mode, wire.requests[:] = "slow", []  # the route decision now takes 3 s
    before = cancelled_runs(client)
    with client.stream("POST", "/v1/agent/stream", json={"question": "What does Apple Inc. do?", "kb": "demo"}):
        deadline = time.monotonic() + 10
        while not wire.requests and time.monotonic() < deadline:  # the run is waiting on the model
            time.sleep(0.02)
    # leaving the block closed the connection mid-run
    deadline = time.monotonic() + 10
    while cancelled_runs(client) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cancelled_runs(client) == before + 1
    assert len(wire.requests) == 1  # no further model calls after the client left
    wire.mode = "ok"


def done_of(client: httpx.Client, question: str, kb: str, thread_id: str | None = None) -> dict:
    body = {"question": question, "kb": kb, **({"thread_id": thread_id} if thread_id else {})}
    response, events = read_events(client, body)
    assert response.status_code == 200 and events[-1][0] == "done"
    return events[-1][1]


def test_a_profile_changed_between_turns_holds_from_the_next_turn(server):
    server.post("/v1/knowledge-bases", json={"name": "tuned"}).raise_for_status()
    upload(server, "tuned", SAMPLE_KB / "apple-inc.md")
    question = "What does Apple Inc. do?"
    assert not done_of(server, question, "tuned", "tuning")["refused"]
    # a reranker calibrated so strictly that no passage passes: the next turn of the same thread refuses
    strict = {"reranker": "embedding", "relevance_threshold": 0.999}
    server.put("/v1/knowledge-bases/tuned/profile", json=strict).raise_for_status()
    refused = done_of(server, question, "tuned", "tuning")
    assert refused["refused"] and refused["citations"] == []
    server.put("/v1/knowledge-bases/tuned/profile", json={}).raise_for_status()
    assert not done_of(server, question, "tuned", "tuning")["refused"]


def test_a_knowledge_base_deleted_and_created_again_is_searched_as_it_is_now(server):
    server.post("/v1/knowledge-bases", json={"name": "renewed"}).raise_for_status()
    upload(server, "renewed", SAMPLE_KB / "apple-inc.md")
    assert done_of(server, "What does Apple Inc. do?", "renewed")["citations"][0]["filename"] == "apple-inc.md"
    server.delete("/v1/knowledge-bases/renewed").raise_for_status()
    server.post("/v1/knowledge-bases", json={"name": "renewed"}).raise_for_status()
    upload(server, "renewed", SAMPLE_KB / "marathon.txt")
    cited = done_of(server, "How long is a marathon?", "renewed")["citations"]
    assert [c["filename"] for c in cited] == ["marathon.txt"]
    assert done_of(server, "What does Apple Inc. do?", "renewed")["citations"] == []
