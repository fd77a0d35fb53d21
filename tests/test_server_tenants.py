"""Tenant isolation through every endpoint, and API-key authentication."""

from __future__ import annotations

import json

import httpx
import pytest
from server_support import add_key, running_server, server_settings, upload

from sieve.stores.api_keys import revoke_api_key
from sieve.stores.stack import Stack

pytestmark = pytest.mark.integration

SECRET = "Bluefin"
SECRET_TEXT = f"Project {SECRET} is the codename of the planned merger with Zanzibar Shipping, due in March."
LEAKS = ("codename of the planned merger", "due in March")  # only B's document says these; no question does


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tenants A and B each have a KB called `handbook`; B also has `b-only`. B's documents hold a secret."""
    home = tmp_path_factory.mktemp("tenants-home")
    files = tmp_path_factory.mktemp("tenant-files")
    settings = server_settings(home)
    keys = {"a": add_key(settings, "tenant-a"), "b": add_key(settings, "tenant-b")}
    (files / "welcome.md").write_text("# Welcome\n\nThe office is open from 9 to 5 on weekdays.\n")
    (files / "plan.md").write_text(f"# Plan\n\n{SECRET_TEXT}\n")
    with running_server(settings) as url:
        a = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['a']}"}, timeout=60)
        b = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['b']}"}, timeout=60)
        for client, kb, name in [(a, "handbook", "welcome.md"), (b, "handbook", "plan.md"), (b, "b-only", "plan.md")]:
            client.post("/v1/knowledge-bases", json={"name": kb})
            job = upload(client, kb, files / name)
            assert job["status"] == "succeeded"
        b_job = job["id"]
        b_docs = {kb: b.get(f"/v1/knowledge-bases/{kb}/documents").json()["data"][0]["doc_id"]
                  for kb in ("handbook", "b-only")}
        # B talks about the secret in a thread whose id A will try to continue
        body = {"question": f"What is project {SECRET}?", "kb": "b-only", "thread_id": "shared"}
        with b.stream("POST", "/v1/agent/stream", json=body) as response:
            assert LEAKS[0] in response.read().decode()
        # and evaluates its KB (queries labelled with its document's filename)
        evaluation = b.post("/v1/knowledge-bases/b-only/evaluations", json={
            "kind": "beir", "queries": json.dumps({"_id": "q1", "text": f"project {SECRET}"}), "qrels": "q1\tplan.md\t1",
        }).json()
        yield {"url": url, "a": a, "b": b, "b_docs": b_docs, "b_job": b_job, "b_eval": evaluation["id"],
               "settings": settings, "keys": keys}
        a.close()
        b.close()


ASK = f"What is project {SECRET}, the merger with Zanzibar Shipping?"
# (method, path, body): A's key aimed at B's knowledge bases, documents, jobs and threads
ROUTES = [
    ("GET", "/v1/models", None),
    ("GET", "/v1/knowledge-bases", None),
    ("GET", "/v1/knowledge-bases/b-only", None),
    ("GET", "/v1/knowledge-bases/b-only/documents", None),
    ("GET", "/v1/knowledge-bases/handbook/documents/{handbook}?chunks=true", None),
    ("GET", "/v1/knowledge-bases/b-only/documents/{b-only}", None),
    ("DELETE", "/v1/knowledge-bases/handbook/documents/{handbook}", None),
    ("DELETE", "/v1/knowledge-bases/b-only/documents/{b-only}", None),
    ("POST", "/v1/knowledge-bases/handbook/documents/{handbook}/reindex", None),
    ("POST", "/v1/knowledge-bases/handbook/search", {"query": ASK, "k": 50}),
    ("POST", "/v1/knowledge-bases/b-only/search", {"query": ASK}),
    ("POST", "/v1/knowledge-bases/handbook/search", {"query": ASK, "k": 50, "paths": ["bm25"]}),
    ("GET", "/v1/knowledge-bases/handbook/documents/{handbook}/chunks", None),
    ("GET", "/v1/knowledge-bases/b-only/documents/{b-only}/chunks", None),
    ("GET", "/v1/knowledge-bases/b-only/evaluations", None),
    ("GET", "/v1/knowledge-bases/b-only/evaluations/{evaluation}", None),
    ("GET", "/v1/knowledge-bases/handbook/evaluations/{evaluation}", None),
    ("POST", "/v1/knowledge-bases/b-only/evaluations", {"kind": "beir", "queries": '{"_id": "q", "text": "x"}',
                                                         "qrels": "q\tplan.md\t1"}),
    ("GET", "/v1/knowledge-bases/b-only/profile", None),
    ("PUT", "/v1/knowledge-bases/b-only/profile", {"paths": ["bm25"]}),
    ("DELETE", "/v1/knowledge-bases/b-only", None),
    ("GET", "/v1/jobs/{job}", None),
    ("POST", "/v1/agent/stream", {"question": ASK, "kb": "handbook"}),
    ("POST", "/v1/agent/stream", {"question": ASK, "kb": "b-only"}),
    ("POST", "/v1/agent/stream", {"question": "What is its codename?", "kb": "handbook", "thread_id": "shared"}),
    ("GET", "/v1/agent/threads/shared", None),
    ("POST", "/v1/chat/completions", {"model": "handbook", "messages": [{"role": "user", "content": ASK}]}),
    ("POST", "/v1/chat/completions", {"model": "b-only", "messages": [{"role": "user", "content": ASK}]}),
    ("POST", "/v1/chat/completions", {"model": "handbook", "stream": True,
                                      "messages": [{"role": "user", "content": ASK}]}),
    ("GET", "/v1/tools", None),
    ("POST", "/v1/tools/search_knowledge_base/invoke", {"query": ASK, "kb": "handbook", "k": 50}),
    ("POST", "/v1/tools/search_knowledge_base/invoke", {"query": ASK, "kb": "b-only"}),
    ("POST", "/v1/tools/ask/invoke", {"question": ASK, "kb": "handbook"}),
    ("POST", "/v1/tools/ask/invoke", {"question": ASK, "kb": "b-only"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p} {json.dumps(b)[:40]}" for m, p, b in ROUTES])
def test_tenant_a_never_sees_or_changes_tenant_b(world, method, path, body):
    path = path.format(**world["b_docs"], job=world["b_job"], evaluation=world["b_eval"])
    response = world["a"].request(method, path, json=body)
    assert response.status_code in (200, 404), response.text
    if "b-only" in path or "b-only" in json.dumps(body) or any(d in path for d in world["b_docs"].values()) \
            or path.startswith("/v1/jobs/") or "/evaluations/" in path:
        assert response.status_code == 404  # B's things do not exist for A
    text = response.text
    assert not any(leak in text for leak in LEAKS)
    if (body and "thread_id" in body) or "/threads/" in path:  # B's turn in that thread never reaches A
        assert SECRET not in text
    if response.status_code == 200:  # (a 404 may echo the name or id A asked for)
        assert "b-only" not in text and not any(doc_id in text for doc_id in world["b_docs"].values())

    # and B still has everything, unchanged
    b = world["b"]
    for kb, doc_id in world["b_docs"].items():
        assert b.get(f"/v1/knowledge-bases/{kb}/documents/{doc_id}").status_code == 200
    assert b.get("/v1/knowledge-bases/b-only/profile").json()["paths"] == ["bm25", "dense"]
    hits = b.post("/v1/knowledge-bases/handbook/search", json={"query": ASK}).json()["hits"]
    assert hits and LEAKS[0] in hits[0]["text"]


def test_requests_without_a_valid_key_are_refused(world):
    url = world["url"]
    for headers in ({}, {"Authorization": "Bearer sk-sieve-not-a-key"}, {"Authorization": "Basic abc"}):
        response = httpx.get(f"{url}/v1/knowledge-bases", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert "API key" in response.json()["error"]["message"]

    settings = world["settings"]
    key = add_key(settings, "tenant-c")
    assert httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"] == []
    with Stack(settings) as stack, stack.sessions.begin() as session:
        assert revoke_api_key(session, key)
    revoked = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
