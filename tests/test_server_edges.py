"""The hostile edges of the API: Host and Origin checks, MCP's GET, cut-short uploads, KB names,
profile values, and error bodies that never show a server path or a traceback."""

from __future__ import annotations

import hashlib
import json
import math
import socket
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from server_support import add_key, embedder, running_server, server_settings, upload, wait_for_job

pytestmark = pytest.mark.integration

LIMIT = 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("edges-home")
    settings = server_settings(home, max_upload_bytes=LIMIT)
    key = add_key(settings, "acme")
    with running_server(settings) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            yield client, home


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("edges-dev-home")
    with running_server(server_settings(home, auth_disabled=True)) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, home


@pytest.fixture
def kb(server, request) -> str:
    client, _ = server
    name = f"{request.node.originalname.removeprefix('test_')[:40]}-{uuid.uuid4().hex[:6]}"
    client.post("/v1/knowledge-bases", json={"name": name}).raise_for_status()
    return name


# ---- Host and Origin --------------------------------------------------------------------


def test_a_dev_server_answers_only_its_loopback_names(dev_server, tmp_path):
    client, _ = dev_server
    client.post("/v1/knowledge-bases", json={"name": "private"}).raise_for_status()
    path = tmp_path / "secret.txt"
    path.write_text("The vault code is 4711.", encoding="utf-8")
    assert upload(client, "private", path)["status"] == "succeeded"
    port = client.base_url.port

    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        listed = client.get("/v1/knowledge-bases/private/documents", headers={"Host": host})
        assert listed.status_code == 200 and listed.json()["data"][0]["filename"] == "secret.txt", host

    # what a DNS-rebinding page sends: its own name, resolved to 127.0.0.1
    for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1.attacker.example:{port}", "a@127.0.0.1"):
        refused = client.get("/v1/knowledge-bases/private/documents", headers={"Host": host})
        assert refused.status_code == 400, host
        assert "SIEVE_ALLOWED_HOSTS" in refused.json()["error"]["message"] and "secret" not in refused.text
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    mcp_headers = {"Accept": "application/json, text/event-stream"}
    for host in (f"localhost:{port}", f"[::1]:{port}"):  # MCP's own Host check lets the loopback names in
        tools = client.post("/mcp", json=listing, headers={**mcp_headers, "Host": host})
        assert tools.status_code == 200 and "search_knowledge_base" in tools.text, tools.text
    refused = client.post("/mcp", json=listing, headers={**mcp_headers, "Host": f"attacker.example:{port}"})
    assert refused.status_code == 400

    # a cross-site page sending to 127.0.0.1 directly carries its Origin
    cross = client.get("/v1/knowledge-bases/private/documents", headers={"Origin": "http://attacker.example"})
    assert cross.status_code == 403 and "secret" not in cross.text
    same = client.get("/v1/knowledge-bases/private/documents", headers={"Origin": f"http://127.0.0.1:{port}"})
    assert same.status_code == 200


def test_allowed_hosts_are_a_setting_and_any_host_is_answered_with_keys_by_default(tmp_path):
    from sieve.api.hosts import allowed_hosts
    from sieve.settings import Settings

    assert allowed_hosts(Settings(home=tmp_path)) == ["*"]
    assert allowed_hosts(Settings(home=tmp_path, auth_disabled=True)) == ["127.0.0.1", "localhost", "::1"]
    named = Settings(home=tmp_path, auth_disabled=True, allowed_hosts="rag.internal, [::1]")
    assert allowed_hosts(named) == ["rag.internal", "::1"]

    settings = server_settings(tmp_path / "home", allowed_hosts=["rag.internal"])
    key = add_key(settings, "acme")
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60,
                                                       headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.get("/v1/knowledge-bases", headers={"Host": "rag.internal:443"}).status_code == 200
        assert client.get("/v1/knowledge-bases").status_code == 400  # 127.0.0.1 is not in the list


async def test_mcps_own_rebinding_protection_uses_the_same_hosts():
    from mcp.server.transport_security import TransportSecurityMiddleware
    from starlette.requests import Request

    from sieve.api.mcp_http import _rebinding_protection

    guard = TransportSecurityMiddleware(_rebinding_protection(["127.0.0.1", "localhost", "::1"]))

    async def status(host: str, origin: str | None = None) -> int | None:
        headers = [(b"host", host.encode()), (b"content-type", b"application/json")]
        if origin:
            headers.append((b"origin", origin.encode()))
        refused = await guard.validate_request(Request({"type": "http", "method": "POST", "headers": headers}),
                                               is_post=True)
        return None if refused is None else refused.status_code

    assert await status("127.0.0.1:8000") is None and await status("[::1]:8000") is None
    assert await status("localhost:8000", "http://localhost:8000") is None
    assert await status("attacker.example:8000") == 421
    assert await status("localhost:8000", "http://attacker.example") == 403
    assert _rebinding_protection(["*"]).enable_dns_rebinding_protection is False


# ---- MCP over HTTP: POST only -----------------------------------------------------------


def test_get_on_mcp_is_refused_at_once_instead_of_holding_a_stream(server):
    client, _ = server
    # a bounded read: a stream held open would raise ReadTimeout here instead of answering
    held = client.get("/mcp", headers={"Accept": "text/event-stream"}, timeout=10)
    assert held.status_code == 405 and held.headers["allow"] == "POST"
    assert held.json()["error"]["code"] == 405
    assert client.delete("/mcp", timeout=10).status_code == 405


# ---- uploads cut short ------------------------------------------------------------------

BOUNDARY = "sieveboundary42"


def form(filename: str, content: bytes, *, closed: bool = True) -> bytes:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + content + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if closed else b"")


def raw_post(url: str, path: str, key: str, body: bytes) -> tuple[int, dict]:
    """One HTTP/1.1 request over a plain socket, the body exactly as given; (status, JSON body)."""
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2] or b"{}")


def stored_files(home: Path) -> list[Path]:
    return [p for p in (home / "uploads").rglob("*") if p.is_file()]


def job_rows(home: Path, kb: str) -> int:
    from sqlalchemy import func, select

    from sieve.stores.database import init_db, make_engine
    from sieve.stores.metadata import JobRecord

    engine = make_engine(server_settings(home).resolved_database_url)
    try:
        with init_db(engine)() as session:
            return session.scalar(select(func.count()).where(JobRecord.kb == kb))
    finally:
        engine.dispose()


def test_an_upload_without_its_closing_boundary_stores_nothing(server, kb):
    client, home = server
    key = client.headers["authorization"].removeprefix("Bearer ")
    path = f"/v1/knowledge-bases/{kb}/documents"
    text = b"The cafeteria opens at eight and closes at three."
    before = stored_files(home)

    for cut in (form("menu.txt", text, closed=False), form("menu.txt", text)[: -len(BOUNDARY) - 8],
                form("menu.txt", text)[:60]):
        status, body = raw_post(str(client.base_url), path, key, cut)
        assert status == 400 and "closing boundary" in body["error"]["message"], body
    assert client.get(path).json()["data"] == [] and job_rows(home, kb) == 0
    assert stored_files(home) == before

    status, job = raw_post(str(client.base_url), path, key, form("menu.txt", text))  # the same form, whole
    assert status == 202 and wait_for_job(client, job["id"])["status"] == "succeeded"
    assert [d["filename"] for d in client.get(path).json()["data"]] == ["menu.txt"]


# ---- knowledge-base names ---------------------------------------------------------------

VALID_NAMES = ["handbook", "研发部", "hr-policies_2024", "v1.2", "Ünïcödé names", "SECRET kb", "9lives", "x" * 100]
INVALID_NAMES = [".", "..", "...", ".hidden", "-rf", "_x", " lead", "trail ", "a/b", "a\\b", "a\x00b",
                 "a\u200bb", "zero\u200dwidth", "bell\x07", "tab\tname", "q?", "x" * 101, ""]


def test_one_kb_name_rule_for_the_api(server):
    client, _ = server
    for name in INVALID_NAMES:
        refused = client.post("/v1/knowledge-bases", json={"name": name})
        assert refused.status_code == 422, name
        message = refused.json()["error"]["message"]
        assert message.startswith("name: "), message
    assert not {k["name"] for k in client.get("/v1/knowledge-bases").json()["data"]} & set(INVALID_NAMES)

    for name in VALID_NAMES:
        suffixed = name if len(name) == 100 else f"{name}-{uuid.uuid4().hex[:4]}"
        assert client.post("/v1/knowledge-bases", json={"name": suffixed}).status_code == 201, name
        address = f"/v1/knowledge-bases/{quote(suffixed, safe='')}"
        assert client.get(address).json()["name"] == suffixed
        assert client.delete(address).status_code == 204
        assert client.get(address).status_code == 404


def test_one_kb_name_rule_for_the_cli(tmp_path, sieve):
    doc = tmp_path / "a.txt"
    doc.write_text("Lunch is at noon.", encoding="utf-8")
    home = tmp_path / "home"
    for name in ("..", "a\u200bb"):
        refused = sieve(home, "ingest", str(doc), "--kb", name, check=False)
        assert refused.returncode == 1 and "invalid knowledge base name" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert sieve(home, "ingest", str(doc), "--kb", "研发部").returncode == 0
    assert [k["name"] for k in json.loads(sieve(home, "kb", "list", "--json").stdout)] == ["研发部"]


def test_a_knowledge_base_created_before_the_rule_stays_reachable(tmp_path):
    from sieve.stores.catalog import ensure_tenant, get_or_create_kb
    from sieve.stores.metadata import KnowledgeBase
    from sieve.stores.stack import Stack

    settings = server_settings(tmp_path / "home")
    with Stack(settings, embedder=embedder()) as stack, stack.sessions.begin() as session:
        ensure_tenant(session, "default")
        session.add(KnowledgeBase(tenant_id="default", name="R&D (old)"))
        session.flush()
        assert get_or_create_kb(session, "default", "R&D (old)").name == "R&D (old)"


# ---- profiles ---------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
budgets = st.integers(1, 3_600_000)
profiles = st.fixed_dictionaries(
    {
        "paths": st.lists(st.sampled_from(["bm25", "dense", "graph"]), min_size=1, max_size=3, unique=True),
        "fusion": st.sampled_from(["rrf", "weighted"]),
        "rrf_k": st.integers(1, 10_000),
        "weights": st.dictionaries(st.sampled_from(["bm25", "dense", "graph"]), st.floats(0, 1000)),
        "path_top_k": st.integers(1, 1000),
        "graph_hops": st.integers(1, 4),
        "graph_extraction": st.booleans(),
        "top_k": st.integers(1, 200),
        "reranker": st.sampled_from(["none", "embedding"]),
        "rerank_top_n": st.integers(1, 200),
        "rerank_mode": st.sampled_from(["replace", "rrf"]),
        "relevance_threshold": st.none() | finite,
        "embed_budget_ms": budgets, "path_budget_ms": budgets, "rerank_budget_ms": budgets, "total_budget_ms": budgets,
    }
)


def test_any_profile_the_api_returns_it_accepts_back_unchanged(server, kb):
    client, _ = server
    address = f"/v1/knowledge-bases/{kb}/profile"

    @hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(profiles)
    def round_trip(profile: dict) -> None:
        stored = client.put(address, json=profile)
        assert stored.status_code == 200, stored.text
        got = client.get(address).json()
        assert got == stored.json()
        again = client.put(address, json=got)
        assert again.status_code == 200 and again.json() == got
        assert got["weights"] == profile["weights"] and got["relevance_threshold"] == profile["relevance_threshold"]

    round_trip()


@pytest.mark.parametrize(("body", "field"), [
    ('{"weights": {"bm25": NaN}}', "weights.bm25"),
    ('{"weights": {"dense": Infinity}}', "weights.dense"),
    ('{"weights": {"dense": -0.5}}', "weights.dense"),
    ('{"weights": {"dense": 1e400}}', "weights.dense"),
    ('{"relevance_threshold": -Infinity}', "relevance_threshold"),
    ('{"relevance_threshold": NaN}', "relevance_threshold"),
    ('{"rrf_k": 0}', "rrf_k"),
    ('{"total_budget_ms": 99999999999}', "total_budget_ms"),
    ('{"embed_budget_ms": 0}', "embed_budget_ms"),
])
def test_a_profile_with_a_value_out_of_range_is_refused_by_field(server, kb, body, field):
    client, _ = server
    address = f"/v1/knowledge-bases/{kb}/profile"
    before = client.get(address).json()
    refused = client.put(address, content=body, headers={"Content-Type": "application/json"})
    assert refused.status_code == 422 and refused.json()["error"]["message"].startswith(f"{field}: "), refused.text
    assert client.get(address).json() == before


def test_profile_set_refuses_the_same_values_with_the_same_words(tmp_path, sieve):
    doc = tmp_path / "a.txt"
    doc.write_text("Lunch is at noon.", encoding="utf-8")
    home = tmp_path / "home"
    sieve(home, "ingest", str(doc), "--kb", "work")
    for assignment, message in (("weights.dense=NaN", "weights.dense: Input should be a finite number"),
                                ("weights.bm25=-1", "weights.bm25: Input should be greater than or equal to 0"),
                                ("relevance_threshold=Infinity", "relevance_threshold: Input should be a finite number")):
        refused = sieve(home, "profile", "set", "--kb", "work", assignment, check=False)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    shown = json.loads(sieve(home, "profile", "show", "--kb", "work", "--json").stdout)
    assert shown["weights"] == {"bm25": 1.0, "dense": 1.5} and shown["relevance_threshold"] is None  # the defaults


def test_a_profile_stored_before_the_checks_still_serves_with_defaults_for_its_bad_fields():
    from sieve.retrievers.profile import RetrievalProfile

    profile = RetrievalProfile.from_stored({"weights": {"bm25": math.nan}, "top_k": 3, "rrf_k": -4})
    assert (profile.top_k, profile.weights, profile.rrf_k) == (3, RetrievalProfile().weights, 60)


# ---- error bodies -----------------------------------------------------------------------


def test_no_error_body_shows_a_server_path_or_a_traceback(server, dev_server, kb, tmp_path):
    client, home = server
    dev, _ = dev_server
    docs = f"/v1/knowledge-bases/{kb}/documents"
    kept = tmp_path / "kept.txt"
    kept.write_text("The library closes at nine.", encoding="utf-8")
    upload(client, kb, kept)
    doc_id = client.get(docs).json()["data"][0]["doc_id"]
    (home / "uploads" / f"{hashlib.sha256(kept.read_bytes()).hexdigest()}.txt").unlink()  # the original vanished
    corrupt = upload(client, kb, kept, filename="broken.docx")  # a "docx" that is not a zip file
    assert corrupt["status"] == "failed" and "broken.docx" in corrupt["error"]

    answers = [
        ("bad JSON", client.post("/v1/knowledge-bases", content=b"{nope", headers={"Content-Type": "application/json"})),
        ("not an object", client.post("/v1/knowledge-bases", json=["x"])),
        ("bad name", client.post("/v1/knowledge-bases", json={"name": ".."})),
        ("unknown KB", client.get("/v1/knowledge-bases/nope")),
        ("unknown KB search", client.post("/v1/knowledge-bases/nope/search", json={"query": "x"})),
        ("unknown KB upload", client.post("/v1/knowledge-bases/nope/documents", files={"file": ("a.txt", b"x")})),
        ("unknown KB profile", client.get("/v1/knowledge-bases/nope/profile")),
        ("unknown doc", client.get(f"{docs}/nope")),
        ("unknown doc delete", client.delete(f"{docs}/nope")),
        ("unknown doc reindex", client.post(f"{docs}/nope/reindex")),
        ("reindex, original gone", client.post(f"{docs}/{doc_id}/reindex")),
        ("unsupported type", client.post(docs, files={"file": ("tool.exe", b"MZ")})),
        ("no suffix", client.post(docs, files={"file": ("README", b"x")})),
        ("oversized", client.post(docs, files={"file": ("big.txt", b"x" * (LIMIT + 1))})),
        ("not multipart", client.post(docs, content=b"x", headers={"Content-Type": "text/plain"})),
        ("malformed multipart", client.post(docs, content=b"garbage\r\n\r\n",
                                            headers={"Content-Type": "multipart/form-data; boundary=zz"})),
        ("cut-short multipart", client.post(docs, content=form("a.txt", b"abc", closed=False),
                                            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})),
        ("bad metadata", client.post(docs, files={"file": ("a.txt", b"x")}, data={"metadata": "[1]"})),
        ("bad profile", client.put(f"/v1/knowledge-bases/{kb}/profile", json={"weights": {"dense": -1}})),
        ("unknown job", client.get("/v1/jobs/nope")),
        ("empty question", client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": " "})),
        ("long question", client.post(f"/v1/knowledge-bases/{kb}/search", json={"query": "x" * 5000})),
        ("no key", httpx.get(f"{client.base_url}/v1/knowledge-bases")),
        ("bad key", httpx.get(f"{client.base_url}/v1/knowledge-bases", headers={"Authorization": "Bearer sk-nope"})),
        ("GET /mcp", client.get("/mcp", timeout=10)),
        ("bad Host", dev.get("/v1/knowledge-bases", headers={"Host": "attacker.example"})),
        ("bad Origin", dev.get("/v1/knowledge-bases", headers={"Origin": "http://attacker.example"})),
        ("failed job", client.get(f"/v1/jobs/{corrupt['id']}")),  # 200, its error in the body
    ]
    reindex = dict(answers)["reindex, original gone"]
    assert reindex.status_code == 409 and "kept.txt" in reindex.json()["error"]["message"]

    forbidden = {str(home), str(home.resolve()), "/tmp", "Traceback", 'File "'}
    if len(str(Path.home())) > 1:
        forbidden.add(str(Path.home()))
    for what, response in answers:
        assert response.status_code >= 400 or what == "failed job", (what, response.status_code)
        assert not any(f in response.text for f in forbidden), (what, response.text)
