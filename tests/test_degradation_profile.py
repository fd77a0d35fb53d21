"""Retrieval profiles change through the API and the CLI, validated alike, and a running server uses
the change from its next query on (no restart)."""

from __future__ import annotations

import json

import httpx
import pytest
from server_support import add_key, load_samples, running_server, server_settings

from sieve.retrievers.profile import RetrievalProfile


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("profile-home")
    settings = server_settings(home)
    key = add_key(settings, "default")  # the CLI's default tenant, so CLI and API address the same KB
    with running_server(settings) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
            load_samples(client, "kb")
            yield client, home


def search(client: httpx.Client, query: str = "Apple iPhone company") -> dict:
    response = client.post("/v1/knowledge-bases/kb/search", json={"query": query, "k": 5})
    assert response.status_code == 200, response.text
    return response.json()


def put(client: httpx.Client, **fields) -> httpx.Response:
    current = client.get("/v1/knowledge-bases/kb/profile").json()
    return client.put("/v1/knowledge-bases/kb/profile", json={**current, **fields})


def test_dense_off_through_the_api_applies_to_the_next_query(server):
    client, _ = server
    assert any("dense" in h["ranks"] for h in search(client)["hits"])
    assert put(client, paths=["bm25"]).status_code == 200
    hits = search(client)["hits"]
    assert hits and all(set(h["ranks"]) == {"bm25"} for h in hits)
    assert put(client, paths=["bm25", "dense"]).status_code == 200
    assert any("dense" in h["ranks"] for h in search(client)["hits"])


def test_the_cli_changes_the_profile_of_a_running_server(server, sieve):
    client, home = server
    changed = sieve(home, "profile", "set", "--kb", "kb", "paths=bm25", "weights.bm25=2", "--json")
    assert json.loads(changed.stdout)["paths"] == ["bm25"]
    hits = search(client)["hits"]
    assert hits and all(set(h["ranks"]) == {"bm25"} for h in hits)
    shown = client.get("/v1/knowledge-bases/kb/profile").json()
    assert shown["weights"]["bm25"] == 2 and shown["paths"] == ["bm25"]
    sieve(home, "profile", "set", "--kb", "kb", "paths=bm25,dense")
    assert json.loads(sieve(home, "profile", "show", "--kb", "kb", "--json").stdout)["paths"] == ["bm25", "dense"]


def test_a_reranker_and_its_threshold_apply_from_the_next_query(server):
    client, _ = server
    # generous budgets: this is about the profile taking effect, not speed (bench/bench_degradation.py)
    assert put(client, reranker="embedding", relevance_threshold=0.8, rerank_top_n=10,
               rerank_budget_ms=60_000, total_budget_ms=120_000).status_code == 200
    result = search(client, "where are apples grown in China")
    relevance = [h["relevance"] for h in result["hits"]]
    assert result["degraded"] == [] and relevance == sorted(relevance, reverse=True)
    assert put(client, **RetrievalProfile().model_dump(mode="json")).status_code == 200


@pytest.mark.parametrize("fields, message", [
    ({"weights": {"bm25": 1.0, "sparse": 1.0}}, "unknown paths: sparse"),
    ({"reranker": "colbert"}, "reranker"),
    ({"total_budget_ms": 0}, "total_budget_ms"),
])
def test_the_api_and_the_cli_refuse_the_same_bad_profiles(server, sieve, fields, message):
    client, home = server
    before = client.get("/v1/knowledge-bases/kb/profile").json()
    response = put(client, **fields)
    assert response.status_code == 422 and message in response.text
    assert client.get("/v1/knowledge-bases/kb/profile").json() == before
    key, value = next(iter(fields.items()))
    assignment = f"{key}={json.dumps(value)}" if isinstance(value, dict) else f"{key}={value}"
    refused = sieve(home, "profile", "set", "--kb", "kb", assignment, check=False)
    assert refused.returncode == 1 and message in refused.stderr.replace("\n", " ")
    assert client.get("/v1/knowledge-bases/kb/profile").json() == before


@pytest.mark.parametrize("assignment, message", [
    ("colour=red", "unknown profile field 'colour'"),
    ("top_k", "'top_k' is not key=value"),
])
def test_the_cli_refuses_an_assignment_it_cannot_read_with_exit_1(server, sieve, assignment, message):
    client, home = server
    before = client.get("/v1/knowledge-bases/kb/profile").json()
    refused = sieve(home, "profile", "set", "--kb", "kb", assignment, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("error: ") and message in refused.stderr
    assert client.get("/v1/knowledge-bases/kb/profile").json() == before


def test_a_reranker_without_its_model_is_refused_by_the_api_and_the_cli_naming_the_setting(server, sieve):
    client, home = server  # this server and the CLI have no SIEVE_RERANKER_MODEL_PATH
    before = client.get("/v1/knowledge-bases/kb/profile").json()
    response = put(client, reranker="flag")
    assert response.status_code == 400 and "SIEVE_RERANKER_MODEL_PATH" in response.text
    refused = sieve(home, "profile", "set", "--kb", "kb", "reranker=flag", check=False)
    assert refused.returncode == 1 and "SIEVE_RERANKER_MODEL_PATH" in refused.stderr.replace("\n", " ")
    assert client.get("/v1/knowledge-bases/kb/profile").json() == before


def test_every_recall_path_may_be_weighted_through_the_api_and_the_cli(server, sieve):
    client, home = server
    assert put(client, weights={"bm25": 1.0, "dense": 1.0, "graph": 0.5}).status_code == 200
    shown = json.loads(sieve(home, "profile", "set", "--kb", "kb", "weights.graph=0.25", "--json").stdout)
    assert shown["weights"] == {"bm25": 1.0, "dense": 1.0, "graph": 0.25}
    assert put(client, **RetrievalProfile().model_dump(mode="json")).status_code == 200


def test_assignments_parse_lists_weights_numbers_and_null():
    profile = RetrievalProfile().assigned(
        ["paths=bm25, dense", "weights.dense=0.5", "top_k=7", "relevance_threshold=0.31", "reranker=flag"])
    assert profile.paths == ["bm25", "dense"] and profile.weights == {"bm25": 1.0, "dense": 0.5}
    assert (profile.top_k, profile.relevance_threshold, profile.reranker.value) == (7, 0.31, "flag")
    assert profile.assigned(["relevance_threshold=null"]).relevance_threshold is None
    with pytest.raises(ValueError, match="unknown profile field 'colour'"):
        profile.assigned(["colour=red"])
    with pytest.raises(ValueError, match="not key=value"):
        profile.assigned(["top_k"])
