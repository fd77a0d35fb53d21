"""The server builds the dense HNSW index itself once uploads settle, and searches meanwhile stay exact."""

from __future__ import annotations

import time

import httpx
import pytest
from server_support import SAMPLE_KB, add_key, running_server, server_settings, upload

pytestmark = pytest.mark.integration

QUERIES = ["Where is Apple headquartered?", "How do plants make sugar from light?", "茶文化的历史", "marathon distance"]


def hnsw(client: httpx.Client) -> dict:
    return client.get("/readyz").raise_for_status().json()["components"]["vector_index"]["hnsw"]


def dense_hits(client: httpx.Client, kb: str, query: str) -> list[tuple[str, float]]:
    response = client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": query, "k": 10})
    assert response.status_code == 200, response.text
    return [(hit["chunk_id"], round(hit["path_scores"]["dense"], 4))
            for hit in response.json()["hits"] if "dense" in hit["path_scores"]]


def test_a_served_kb_gets_its_hnsw_index_after_uploads_and_answers_the_same(tmp_path):
    # a graph from 3 vectors of 384 floats on, built half a second after the last upload
    settings = server_settings(tmp_path / "home", hnsw_build_quiet_s=0.5, hnsw_indexing_threshold_kb=5)
    key = add_key(settings, "acme")
    with running_server(settings) as url, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        client.post("/v1/knowledge-bases", json={"name": "handbook"}).raise_for_status()
        for path in sorted(SAMPLE_KB.iterdir()):
            assert upload(client, "handbook", path)["status"] == "succeeded"
        exact = {q: dense_hits(client, "handbook", q) for q in QUERIES}  # nothing indexed yet
        assert all(exact.values())
        deadline = time.monotonic() + 60
        while (state := hnsw(client))["indexed"] < state["points"] or state["building"]:
            # searches go on while the graph is built (and before it), with the exact answers
            assert {q: dense_hits(client, "handbook", q) for q in QUERIES} == exact
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        assert state["points"] >= 8
        assert {q: dense_hits(client, "handbook", q) for q in QUERIES} == exact
        # an upload after the build lands beside the graph and is found at once
        note = tmp_path / "lockers.txt"
        note.write_text("Coin lockers at the north gate take 100-yen coins.", encoding="utf-8")
        assert upload(client, "handbook", note)["status"] == "succeeded"
        response = client.post("/v1/knowledge-bases/handbook/search", json={"query": "coin lockers", "k": 3})
        assert response.json()["hits"][0]["filename"] == "lockers.txt"
