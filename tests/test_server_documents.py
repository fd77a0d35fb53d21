"""Knowledge bases and documents over HTTP: upload jobs, limits, corrupt files, delete, re-index, profiles."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import docx
import httpx
import pytest
from server_support import add_key, running_server, server_settings, upload, wait_for_job

pytestmark = pytest.mark.integration

LIMIT = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("documents-home")
    settings = server_settings(home, max_upload_bytes=LIMIT)
    key = add_key(settings, "acme")
    with running_server(settings) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            yield client, home


@pytest.fixture
def kb(server, request) -> str:
    client, _ = server
    name = f"{request.node.originalname.removeprefix('test_')[:50]}-{uuid.uuid4().hex[:6]}"
    client.post("/v1/knowledge-bases", json={"name": name, "description": "a test KB"}).raise_for_status()
    return name


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def docx_bytes(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def search(client: httpx.Client, kb: str, query: str, k: int = 5) -> list[dict]:
    response = client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": query, "k": k})
    assert response.status_code == 200, response.text
    return response.json()["hits"]


def documents(client: httpx.Client, kb: str) -> list[dict]:
    return client.get(f"/v1/knowledge-bases/{kb}/documents").raise_for_status().json()["data"]


def test_upload_runs_as_a_job_and_the_document_becomes_searchable(server, kb, tmp_path):
    client, _ = server
    meta = json.dumps({"owner": "张伟", "tags": ["hr", "policy"], "created_at": "2023-05-01"})
    path = write(tmp_path, "leave.md", "# Annual leave\n\nEmployees get 15 days of annual leave per year.\n")
    job = upload(client, kb, path, metadata=meta)
    assert job["status"] == "succeeded" and job["error"] is None and job["report"]["added"] == 1
    [doc] = documents(client, kb)
    assert (doc["filename"], doc["owner"], doc["tags"]) == ("leave.md", "张伟", ["hr", "policy"])
    assert doc["created_at"].startswith("2023-05-01")
    full = client.get(f"/v1/knowledge-bases/{kb}/documents/{doc['doc_id']}", params={"chunks": True}).json()
    assert "15 days of annual leave" in full["chunk_texts"][0]
    assert search(client, kb, "how many days of annual leave")[0]["doc_id"] == doc["doc_id"]
    summary = client.get(f"/v1/knowledge-bases/{kb}").json()
    assert (summary["documents"], summary["description"]) == (1, "a test KB")


def test_uploading_a_file_of_the_same_name_replaces_it(server, kb, tmp_path):
    client, _ = server
    upload(client, kb, write(tmp_path, "menu.txt", "The canteen serves noodles on Mondays."))
    job = upload(client, kb, write(tmp_path, "menu.txt", "The canteen serves dumplings on Fridays."))
    assert job["report"]["replaced"] == 1
    [doc] = documents(client, kb)
    hits = search(client, kb, "canteen")
    assert [h["doc_id"] for h in hits] == [doc["doc_id"]] and "dumplings" in hits[0]["text"]


def test_a_corrupt_upload_fails_its_job_and_damages_nothing_stored(server, kb, tmp_path):
    client, home = server
    good = docx_bytes("Remote work is allowed two days a week.")
    first = client.post(f"/v1/knowledge-bases/{kb}/documents", files={"file": ("policy.docx", good)})
    assert wait_for_job(client, first.json()["id"])["status"] == "succeeded"
    before = documents(client, kb)

    for name, data in [("policy.docx", good[: len(good) // 2]), ("scan.pdf", b"%PDF-1.4\n garbage")]:
        response = client.post(f"/v1/knowledge-bases/{kb}/documents", files={"file": (name, data)})
        job = wait_for_job(client, response.json()["id"])
        assert job["status"] == "failed" and job["report"] is None
        assert job["error"].startswith(("corrupt DOCX: policy.docx", "corrupt or encrypted PDF: scan.pdf"))

    assert documents(client, kb) == before  # the stored version is untouched
    assert "two days a week" in search(client, kb, "remote work")[0]["text"]
    # only the good original is kept (for re-indexing); the refused files were not
    assert len(list((home / "uploads").glob("*.docx"))) == 1 and not list((home / "uploads").glob("*.pdf"))
    job = client.post(f"/v1/knowledge-bases/{kb}/documents/{before[0]['doc_id']}/reindex")
    assert wait_for_job(client, job.json()["id"])["status"] == "succeeded"  # its original was kept


@pytest.mark.parametrize(("files", "data", "status", "reason"), [
    ({"file": ("big.txt", b"a" * (LIMIT + 1))}, None, 413, f"upload limit of {LIMIT} bytes"),
    ({"file": ("tool.exe", b"MZ")}, None, 415, "unsupported file type .exe; supported: .txt, .md"),
    ({"file": ("README", b"text")}, None, 415, "a file without a suffix"),
    ({"file": ("a.txt", b"text")}, {"metadata": "not json"}, 400, "metadata must be a JSON object"),
    ({"other": ("a.txt", b"text")}, None, 400, "unexpected form field 'other'"),
    ({"metadata": (None, b"{}")}, None, 400, "the form has no `file` field"),
])
def test_bad_uploads_are_refused_with_the_reason_and_store_nothing(server, kb, files, data, status, reason):
    client, home = server
    response = client.post(f"/v1/knowledge-bases/{kb}/documents", files=files, data=data)
    assert response.status_code == status and reason in response.json()["error"]["message"]
    assert documents(client, kb) == []
    assert not any((home / "uploads" / ".incoming").glob("*"))  # no half-received file is left behind


def test_an_upload_that_is_not_multipart_is_refused(server, kb):
    client, _ = server
    response = client.post(f"/v1/knowledge-bases/{kb}/documents", json={"file": "hello"})
    assert response.status_code == 400 and "multipart/form-data" in response.json()["error"]["message"]
    response = client.post("/v1/knowledge-bases/nope/documents", files={"file": ("a.txt", b"x")})
    assert response.status_code == 404


def test_delete_removes_a_document_everywhere(server, kb, tmp_path):
    client, home = server
    upload(client, kb, write(tmp_path, "keep.txt", "Bicycles are parked in the basement."))
    upload(client, kb, write(tmp_path, "drop.txt", "The rooftop garden opens in spring."))
    drop = next(d for d in documents(client, kb) if d["filename"] == "drop.txt")
    originals = len(list((home / "uploads").glob("*.txt")))
    assert client.delete(f"/v1/knowledge-bases/{kb}/documents/{drop['doc_id']}").status_code == 204
    assert [d["filename"] for d in documents(client, kb)] == ["keep.txt"]
    assert all(h["doc_id"] != drop["doc_id"] for h in search(client, kb, "rooftop garden spring"))
    assert client.get(f"/v1/knowledge-bases/{kb}/documents/{drop['doc_id']}").status_code == 404
    assert client.delete(f"/v1/knowledge-bases/{kb}/documents/{drop['doc_id']}").status_code == 404
    assert len(list((home / "uploads").glob("*.txt"))) == originals - 1  # its kept original went too


def test_deleting_a_knowledge_base_removes_it_its_documents_and_their_originals(server, kb, tmp_path):
    client, home = server
    upload(client, kb, write(tmp_path, "lockers.txt", "Lockers on the third floor take a one-euro coin."))
    originals = len(list((home / "uploads").glob("*.txt")))
    assert client.delete(f"/v1/knowledge-bases/{kb}").status_code == 204
    assert client.get(f"/v1/knowledge-bases/{kb}").status_code == 404
    assert kb not in [k["name"] for k in client.get("/v1/knowledge-bases").json()["data"]]
    gone = client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": "lockers coin"})
    assert gone.status_code == 404 and "does not exist" in gone.json()["error"]["message"]
    assert len(list((home / "uploads").glob("*.txt"))) == originals - 1
    assert client.delete(f"/v1/knowledge-bases/{kb}").status_code == 404
    # the name can be used again, for an empty knowledge base: nothing was left in BM25 or vectors
    client.post("/v1/knowledge-bases", json={"name": kb}).raise_for_status()
    assert search(client, kb, "lockers coin") == [] and documents(client, kb) == []


def test_reindex_rebuilds_a_document_from_its_original_and_keeps_its_metadata(server, kb, tmp_path):
    client, _ = server
    upload(client, kb, write(tmp_path, "faq.md", "# FAQ\n\nThe office opens at 9 am."), metadata='{"owner": "Ana"}')
    [doc] = documents(client, kb)
    response = client.post(f"/v1/knowledge-bases/{kb}/documents/{doc['doc_id']}/reindex")
    assert response.status_code == 202 and response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded" and job["kind"] == "reindex" and job["report"]["replaced"] == 1
    [again] = documents(client, kb)
    assert again["doc_id"] == job["report"]["doc_ids"][0] != doc["doc_id"]
    assert (again["owner"], again["filename"], again["created_at"]) == ("Ana", "faq.md", doc["created_at"])
    assert search(client, kb, "when does the office open")[0]["doc_id"] == again["doc_id"]


def test_the_retrieval_profile_applies_from_the_next_request(server, kb, tmp_path):
    client, _ = server
    for i, text in enumerate(["Solar panels on the roof.", "Solar heating of water.", "Wind turbines offshore."]):
        upload(client, kb, write(tmp_path, f"energy-{i}.txt", text))
    default = client.get(f"/v1/knowledge-bases/{kb}/profile").json()
    assert default["paths"] == ["bm25", "dense"] and len(search(client, kb, "solar", k=3)) == 3

    stored = client.put(f"/v1/knowledge-bases/{kb}/profile", json={**default, "paths": ["bm25"]})
    assert stored.status_code == 200 and stored.json()["paths"] == ["bm25"]
    hits = search(client, kb, "solar", k=3)
    assert len(hits) == 2 and all(set(h["ranks"]) == {"bm25"} for h in hits)  # dense no longer runs

    bad = client.put(f"/v1/knowledge-bases/{kb}/profile", json={"paths": ["magic"]})
    assert bad.status_code == 422 and "paths.0" in bad.json()["error"]["message"]
    assert client.get(f"/v1/knowledge-bases/{kb}/profile").json()["paths"] == ["bm25"]


def test_knowledge_bases_are_created_once_with_valid_names(server, kb):
    client, _ = server
    again = client.post("/v1/knowledge-bases", json={"name": kb})
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]
    assert client.post("/v1/knowledge-bases", json={"name": "a/b"}).status_code == 422
    assert kb in [k["name"] for k in client.get("/v1/knowledge-bases").json()["data"]]
    assert client.get("/v1/knowledge-bases/nope").status_code == 404
    assert client.get("/v1/jobs/nope").status_code == 404


def test_health_readiness_and_metrics_need_no_key(server):
    client, _ = server
    client.post("/v1/knowledge-bases/nope/search", json={"query": "x"})
    with httpx.Client(base_url=client.base_url) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz").json()
        metrics = anonymous.get("/metrics").text
    assert ready["status"] == "ready" and all(ready["checks"].values())
    assert 'sieve_http_requests_total{method="POST",route="/v1/knowledge-bases/{kb}/search",status="404"}' in metrics
    assert 'sieve_ingest_jobs_total{kind="ingest",status="succeeded"}' in metrics


def test_job_records_survive_a_restart_and_the_jobs_a_stopped_server_left_are_failed(tmp_path):
    from sieve.stores.database import init_db, make_engine
    from sieve.stores.metadata import JobRecord

    settings = server_settings(tmp_path / "home")
    headers = {"Authorization": f"Bearer {add_key(settings, 'acme')}"}
    with running_server(settings) as url, httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        client.post("/v1/knowledge-bases", json={"name": "kb"}).raise_for_status()
        done = upload(client, "kb", write(tmp_path, "a.txt", "The bike shed is behind building C."))

    # what a server killed mid-job leaves behind, and a job of another server sharing the metadata DB
    engine = make_engine(settings.resolved_database_url)
    sessions = init_db(engine)
    with sessions.begin() as session:
        for job_id, home in (("killed", str(settings.home.resolve())), ("elsewhere", "/srv/other-home")):
            session.add(JobRecord(id=job_id, tenant_id="acme", home=home, kb="kb", kind="ingest",
                                  filename="b.txt", status="running"))

    with running_server(settings) as url, httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        again = client.get(f"/v1/jobs/{done['id']}").raise_for_status().json()
        assert again["status"] == "succeeded" and again["report"] == done["report"]
        killed = client.get("/v1/jobs/killed").raise_for_status().json()
        assert killed["status"] == "failed" and "upload the file again" in killed["error"]
        assert killed["finished_at"] is not None
    with sessions() as session:
        assert session.get(JobRecord, "elsewhere").status == "running"  # not this server's to judge
    engine.dispose()
