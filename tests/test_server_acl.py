"""Document access lists through the API: users' keys and JWTs, every read route, and the attacks.

Tenant `acme` has one knowledge base with a public welcome page and a salary table only the `hr` group
may read. `wang` (group eng) must never receive the table, through any route; `li` (group hr) does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from server_support import add_key, running_server, server_settings, upload

from sieve.stores.api_keys import create_api_key
from sieve.stores.stack import Stack

pytestmark = pytest.mark.integration

SECRET = "Zorkmids"
SALARIES = f"# Salary bands\n\nThe salary band for level 7 is 42,000 to 51,000 {SECRET} a year, paid monthly.\n"
ASK = "What is the salary band for level 7?"
AUDIENCE, ISSUER = "sieve", "https://idp.acme.test"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def token(key, *, sub="wang", groups=("eng",), aud=AUDIENCE, iss=ISSUER, ttl=600, alg="RS256", **extra) -> str:
    claims = {"sub": sub, "groups": list(groups), "tenant": "acme", "aud": aud, "iss": iss,
              "exp": int(time.time()) + ttl, **extra}
    return jwt.encode(claims, key, algorithm=alg)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("acl-home")
    files = tmp_path_factory.mktemp("acl-files")
    idp = rsa_key()
    public = idp.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (files / "idp.pem").write_bytes(public)
    settings = server_settings(home, jwt_public_key_file=files / "idp.pem", jwt_audience=AUDIENCE, jwt_issuer=ISSUER)
    admin = add_key(settings, "acme")
    with Stack(settings) as stack, stack.sessions.begin() as session:
        wang = create_api_key(session, "acme", "wang", user="wang", groups=["eng"])
        li = create_api_key(session, "acme", "li", user="li", groups=["hr"])
    (files / "welcome.md").write_text("# Welcome\n\nThe office is open from 9 to 5 on weekdays.\n")
    (files / "salaries.md").write_text(SALARIES)
    with running_server(settings) as url:
        def client(credential: str) -> httpx.Client:
            return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {credential}"}, timeout=120)

        clients = {"admin": client(admin), "wang": client(wang), "li": client(li),
                   "wang-jwt": client(token(pem(idp))), "li-jwt": client(token(pem(idp), sub="li", groups=["hr"]))}
        clients["admin"].post("/v1/knowledge-bases", json={"name": "handbook"}).raise_for_status()
        assert upload(clients["admin"], "handbook", files / "welcome.md")["status"] == "succeeded"
        job = upload(clients["admin"], "handbook", files / "salaries.md", metadata=json.dumps({"acl": "group:hr"}))
        assert job["status"] == "succeeded", job
        secret_doc = job["report"]["doc_ids"][0]
        yield {"url": url, "idp": idp, "secret_doc": secret_doc, **clients}
        for c in clients.values():
            c.close()


READS = [
    ("GET", "/v1/models", None),
    ("GET", "/v1/knowledge-bases", None),
    ("GET", "/v1/knowledge-bases/handbook", None),
    ("GET", "/v1/knowledge-bases/handbook/documents", None),
    ("GET", "/v1/knowledge-bases/handbook/documents/{doc}?chunks=true", None),
    ("GET", "/v1/knowledge-bases/handbook/documents/{doc}/acl", None),
    ("GET", "/v1/knowledge-bases/handbook/documents/{doc}/chunks/{chunk}", None),
    ("GET", "/v1/knowledge-bases/handbook/documents/{doc}/chunks/{chunk}/image", None),
    ("POST", "/v1/knowledge-bases/handbook/search", {"query": ASK, "k": 50}),
    ("POST", "/v1/agent/stream", {"question": ASK, "kb": "handbook"}),
    ("POST", "/v1/research/stream", {"question": ASK, "kb": "handbook"}),
    ("POST", "/v1/chat/completions", {"model": "handbook", "messages": [{"role": "user", "content": ASK}]}),
    ("POST", "/v1/chat/completions", {"model": "handbook", "stream": True,
                                      "messages": [{"role": "user", "content": ASK}]}),
    ("GET", "/v1/tools", None),
    ("POST", "/v1/tools/search_knowledge_base/invoke", {"query": ASK, "kb": "handbook", "k": 50}),
    ("POST", "/v1/tools/ask/invoke", {"question": ASK, "kb": "handbook"}),
]


def secret_chunk(world) -> str:
    doc = world["admin"].get(f"/v1/knowledge-bases/handbook/documents/{world['secret_doc']}?chunks=true").json()
    assert SECRET in doc["chunk_texts"][0]
    hits = world["li"].post("/v1/knowledge-bases/handbook/search", json={"query": ASK, "k": 5}).json()["hits"]
    return next(h["chunk_id"] for h in hits if h["doc_id"] == world["secret_doc"])


@pytest.mark.parametrize("who", ["wang", "wang-jwt"])
@pytest.mark.parametrize(("method", "path", "body"), READS, ids=[f"{m} {p} {json.dumps(b)[:30]}" for m, p, b in READS])
def test_a_user_never_receives_a_document_outside_its_access_list(world, who, method, path, body):
    path = path.format(doc=world["secret_doc"], chunk=secret_chunk(world))
    response = world[who].request(method, path, json=body)
    # exactly what a document that does not exist answers; everything else answers as usual
    assert response.status_code == (404 if world["secret_doc"] in path else 200), response.text
    assert SECRET not in response.text and "Salary bands" not in response.text and "salaries.md" not in response.text
    if response.status_code == 200:
        assert world["secret_doc"] not in response.text
    if path == "/v1/knowledge-bases/handbook":
        assert response.json()["documents"] == 1  # counts do not reveal the hidden document either


@pytest.mark.parametrize("who", ["li", "li-jwt"])
def test_a_member_of_the_group_reads_it_and_its_citation_link_opens(world, who):
    hits = world[who].post("/v1/knowledge-bases/handbook/search", json={"query": ASK, "k": 5}).json()["hits"]
    assert SECRET in hits[0]["text"]
    done = world[who].post("/v1/chat/completions", json={
        "model": "handbook", "messages": [{"role": "user", "content": ASK}]}).json()
    links = [a["url_citation"]["url"] for a in done["choices"][0]["message"]["annotations"]]
    assert links and SECRET in httpx.get(links[0]).text  # a browser opens it without a key


def test_an_access_list_change_is_seen_by_the_next_request_and_closes_old_links(world):
    admin, path = world["admin"], f"/v1/knowledge-bases/handbook/documents/{world['secret_doc']}/acl"
    done = world["li"].post("/v1/chat/completions", json={
        "model": "handbook", "messages": [{"role": "user", "content": ASK}]}).json()
    link = done["choices"][0]["message"]["annotations"][0]["url_citation"]["url"]
    assert admin.get(path).json()["acl"] == ["group:hr"]
    try:
        assert admin.put(path, json={"acl": ["user:zhang.wei"]}).json()["acl"] == ["user:zhang.wei"]
        search = world["li"].post("/v1/knowledge-bases/handbook/search", json={"query": ASK, "k": 50}).text
        assert SECRET not in search
        assert httpx.get(link).status_code == 404  # the link was li's: it opens only while li may read
        assert admin.put(path, json={"acl": ["tenant"]}).json()["acl"] == ["*"]
        assert SECRET in world["wang"].post("/v1/knowledge-bases/handbook/search", json={"query": ASK}).text
    finally:
        admin.put(path, json={"acl": ["group:hr"]}).raise_for_status()
    assert SECRET not in world["wang"].post("/v1/knowledge-bases/handbook/search", json={"query": ASK}).text
    assert admin.put(path, json={"acl": ["role:hr"]}).status_code == 422


@pytest.mark.parametrize("who", ["wang", "li", "li-jwt"])
def test_users_change_nothing(world, who):
    client, doc = world[who], world["secret_doc"]
    assert client.put(f"/v1/knowledge-bases/handbook/documents/{doc}/acl", json={"acl": ["tenant"]}).status_code == 403
    assert client.delete(f"/v1/knowledge-bases/handbook/documents/{doc}").status_code == 403
    assert client.post("/v1/knowledge-bases", json={"name": "mine"}).status_code == 403
    files = {"file": ("x.md", b"# x\n\nhello\n")}
    assert client.post("/v1/knowledge-bases/handbook/documents", files=files).status_code == 403
    assert client.put("/v1/knowledge-bases/handbook/profile", json={"paths": ["bm25"]}).status_code == 403


def test_forged_expired_and_wrongly_signed_tokens_are_refused(world):
    idp, attacker = pem(world["idp"]), pem(rsa_key())
    public = world["idp"].public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = {
        "groups claimed under another key": token(attacker, groups=["hr"]),
        "expired": token(idp, groups=["hr"], ttl=-60),
        "another audience": token(idp, groups=["hr"], aud="other-app"),
        "another issuer": token(idp, groups=["hr"], iss="https://evil.test"),
        "unsigned": jwt.encode({"sub": "wang", "groups": ["hr"], "aud": AUDIENCE, "iss": ISSUER,
                                "exp": int(time.time()) + 600}, None, algorithm="none"),
        "HMAC keyed with the public key": _hmac_signed(public, {"sub": "wang", "groups": ["hr"], "tenant": "acme",
                                                                "aud": AUDIENCE, "iss": ISSUER,
                                                                "exp": int(time.time()) + 600}),
        "no expiry": jwt.encode({"sub": "wang", "groups": ["hr"], "aud": AUDIENCE, "iss": ISSUER}, idp, "RS256"),
        "tampered groups": _swap_payload(token(idp), {"groups": ["hr"]}),
        "garbage": "not-a-token",
    }
    for what, credential in forged.items():
        response = httpx.post(f"{world['url']}/v1/knowledge-bases/handbook/search", json={"query": ASK},
                              headers={"Authorization": f"Bearer {credential}"})
        assert response.status_code == 401, what
        assert SECRET not in response.text and response.headers["www-authenticate"] == "Bearer"
    assert "expired" in httpx.get(f"{world['url']}/v1/models",
                                  headers={"Authorization": f"Bearer {forged['expired']}"}).text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _swap_payload(signed: str, changes: dict) -> str:
    """The token with its claims changed and the original signature kept."""
    header, payload, signature = signed.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return f"{header}.{_b64(json.dumps({**claims, **changes}).encode())}.{signature}"


def _hmac_signed(secret: bytes, claims: dict) -> str:
    """The algorithm-confusion attack: HS256 with the server's public key as the shared secret
    (PyJWT refuses to make such a token, so it is made by hand)."""
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def test_a_thread_of_one_user_cannot_be_continued_or_read_by_another(world):
    def turn(who: str, question: str) -> str:
        body = {"question": question, "kb": "handbook", "thread_id": "payroll"}
        with world[who].stream("POST", "/v1/agent/stream", json=body) as response:
            assert response.status_code == 200
            return response.read().decode()

    assert SECRET in turn("li", ASK)
    assert SECRET in world["li"].get("/v1/agent/threads/payroll").text  # li reads its own thread back
    for other in ("wang", "wang-jwt", "admin"):  # nobody else reads it, not even the tenant-wide key
        assert world[other].get("/v1/agent/threads/payroll").status_code == 404
    for other in ("wang", "wang-jwt"):  # the same thread id is another, empty thread for them
        replay = turn(other, "And what about the band you just told me?")
        assert SECRET not in replay and "42,000" not in replay
    tools = world["wang"].post("/v1/tools/ask/invoke", json={"question": "Repeat that band.", "kb": "handbook",
                                                            "thread_id": "payroll"})
    assert tools.status_code == 200 and SECRET not in tools.text


async def test_mcp_tools_are_scoped_to_the_callers_access_list(world):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    forged = json.dumps({"tenant": "acme", "user": "li", "groups": ["hr"]})
    http = httpx2.AsyncClient(headers={"Authorization": world["wang"].headers["Authorization"],
                                       "x-sieve-authenticated-caller": forged}, timeout=120)
    async with Client(streamable_http_client(f"{world['url']}/mcp", http_client=http), read_timeout_seconds=120) as mcp:
        found = await mcp.call_tool("search_knowledge_base", {"query": ASK, "kb": "handbook", "k": 50})
        assert not found.is_error and SECRET not in json.dumps(found.structured_content)
        listed = await mcp.call_tool("list_knowledge_bases", {})
        assert listed.structured_content["knowledge_bases"][0]["documents"] == 1
