"""Evaluations through the API: data checked before the 202, runs kept per KB, answer-or-refuse rows scored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from server_support import running_server, server_settings, upload

pytestmark = pytest.mark.integration

ROWS = Path(__file__).resolve().parents[1] / "evals" / "data" / "answer_or_refuse_en.jsonl"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("eval-home")
    with running_server(server_settings(home, auth_disabled=True)) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.post("/v1/knowledge-bases", json={"name": "kb"}).raise_for_status()
            doc = tmp_path_factory.mktemp("eval-files") / "guide.md"
            doc.write_text("# Guide\n\nThe ferry leaves the harbour every hour.\n")
            assert upload(client, "kb", doc)["status"] == "succeeded"
            yield client


def finished(client: httpx.Client, run: dict, kb: str = "kb") -> dict:
    deadline = time.monotonic() + 120
    while run["status"] == "running":
        assert time.monotonic() < deadline, "the evaluation did not finish"
        time.sleep(0.2)
        run = client.get(f"/v1/knowledge-bases/{kb}/evaluations/{run['id']}").raise_for_status().json()
    return run


def test_bad_data_is_refused_with_the_reason_before_anything_runs(client):
    cases = [
        ({"kind": "beir", "queries": "not json", "qrels": "q\tguide.md\t1"}, "queries: not BEIR"),
        ({"kind": "beir", "queries": '{"_id": "q", "text": "ferry"}', "qrels": "other\tguide.md\t1"}, "qrels: no query"),
        ({"kind": "beir", "qrels": "q\tguide.md\t1"}, "needs queries.jsonl"),
        ({"kind": "refusal", "rows": '{"id": "a-pos", "query": "q"}'}, "rows: each line"),
        ({"kind": "nonsense"}, "kind"),
    ]
    for body, reason in cases:
        response = client.post("/v1/knowledge-bases/kb/evaluations", json=body)
        assert response.status_code == 422 and reason in response.json()["error"]["message"], response.text
    assert client.get("/v1/knowledge-bases/kb/evaluations").json()["data"] == []
    assert client.post("/v1/knowledge-bases/nope/evaluations", json=cases[0][0]).status_code == 404


def test_runs_are_kept_per_kb_newest_first_with_their_outcome(client):
    # queries labelled with a document the KB does not hold: the run fails and says why
    missing = client.post("/v1/knowledge-bases/kb/evaluations", json={
        "kind": "beir", "name": "wrong-corpus", "queries": '{"_id": "q", "text": "ferry"}', "qrels": "q\tdoc-9\t1"})
    assert missing.status_code == 202 and missing.headers["location"].endswith(missing.json()["id"])
    failed = finished(client, missing.json())
    assert failed["status"] == "failed" and "no document of knowledge base 'kb' is named by the qrels" in failed["error"]

    good = finished(client, client.post("/v1/knowledge-bases/kb/evaluations", json={
        "kind": "beir", "name": "guide", "queries": '{"_id": "q", "text": "when does the ferry leave"}',
        "qrels": "q\tguide.md\t1"}).json())
    assert good["status"] == "succeeded", good
    runs = {r["name"]: r for r in good["result"]["runs"]}
    assert set(runs) == {"bm25", "dense", "fused"} and runs["fused"]["metrics"]["hit@1"] == 1.0
    assert set(runs["bm25"]["latency_ms"]) == {"p50", "p95"}
    listed = client.get("/v1/knowledge-bases/kb/evaluations").json()["data"]
    assert [r["name"] for r in listed] == ["guide", "wrong-corpus"]


def test_answer_or_refuse_rows_give_a_confusion_matrix_on_the_held_out_half(client):
    lines = ROWS.read_text(encoding="utf-8").splitlines()[:40]
    run = finished(client, client.post("/v1/knowledge-bases/kb/evaluations", json={
        "kind": "refusal", "name": "en", "rows": "\n".join(lines)}).json())
    assert run["status"] == "succeeded", run
    result = run["result"]
    assert result["rows"] == 40 and result["relevance"] == "embedding"
    for report in result["reports"]:
        cells = report["test"]["confusion"]
        assert set(cells) == {"answerable/answered", "answerable/refused", "unanswerable/answered",
                              "unanswerable/refused"}
        assert sum(cells.values()) + report["calibration"]["rows"] == len(lines)  # each row on one half
    assert [r["name"] for r in result["reports"]][-1] == "evidence model, shipped threshold"


def test_a_deleted_kb_takes_its_evaluations_along(client):
    client.post("/v1/knowledge-bases", json={"name": "gone"}).raise_for_status()
    lines = ROWS.read_text(encoding="utf-8").splitlines()[:20]
    run = client.post("/v1/knowledge-bases/gone/evaluations", json={"kind": "refusal", "rows": "\n".join(lines)})
    assert finished(client, run.json(), "gone")["status"] == "succeeded"
    assert client.delete("/v1/knowledge-bases/gone").status_code == 204
    client.post("/v1/knowledge-bases", json={"name": "gone"}).raise_for_status()
    assert client.get("/v1/knowledge-bases/gone/evaluations").json()["data"] == []


def test_an_evaluation_the_server_stopped_during_reads_as_interrupted(tmp_path):
    settings = server_settings(tmp_path / "home", auth_disabled=True)
    doc = tmp_path / "guide.md"
    doc.write_text("# Guide\n\nThe ferry leaves the harbour every hour.\n")
    queries = "\n".join(json.dumps({"_id": f"q{i}", "text": f"ferry question {i}"}) for i in range(3000))
    qrels = "\n".join(f"q{i}\tguide.md\t1" for i in range(3000))
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/knowledge-bases", json={"name": "kb"}).raise_for_status()
        assert upload(client, "kb", doc)["status"] == "succeeded"
        run = client.post("/v1/knowledge-bases/kb/evaluations", json={"kind": "beir", "queries": queries,
                                                                      "qrels": qrels}).json()
        assert run["status"] == "running"
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        again = client.get(f"/v1/knowledge-bases/kb/evaluations/{run['id']}").json()
    assert again["status"] == "failed" and "the server stopped before the evaluation finished" in again["error"]
