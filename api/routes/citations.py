"""Cited chunks as links: `GET /v1/knowledge-bases/{kb}/documents/{doc_id}/chunks/{chunk_id}`.

A chat client shows a citation as a link the user clicks, and a browser sends no API key. So the
links in answers carry `sig`, an HMAC of the tenant, knowledge base, document and chunk under the
server's link secret: the link opens that one chunk and nothing else, for anyone who holds it (like
the answer that quotes it). A link made for a caller with access lists carries its readers (`as`,
signed too) and opens only while the document's access list still admits them. Without `sig` the
route takes the API key as every other route does.
The body is JSON, or a small HTML page for a browser (`Accept: text/html`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sieve.api.auth import authenticate_principal
from sieve.api.deps import StateDep
from sieve.api.schemas import CitedChunkPublic
from sieve.api.state import AppState
from sieve.graphs.shared.state import Citation
from sieve.settings import Settings
from sieve.stores.acl import Principal
from sieve.stores.crud import KbName, cited_chunk

router = APIRouter(prefix="/v1/knowledge-bases/{kb}/documents", tags=["documents"])
_bearer = HTTPBearer(auto_error=False, description="An API key; not needed with a link's `sig`.")


@lru_cache(maxsize=8)
def _secret_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(secrets.token_bytes(32))
        # a hard link appears whole or not at all, and never replaces the key another process made first
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_bytes()


def link_secret(settings: Settings) -> bytes:
    """`SIEVE_LINK_SECRET` (shared by every worker of a deployment), else a key kept in `SIEVE_HOME/link.key`."""
    if settings.link_secret is not None:
        return settings.link_secret.get_secret_value().encode()
    return _secret_file((settings.home / "link.key").resolve())


def signature(secret: bytes, tenant: str, kb: str, doc_id: str, chunk_id: str, readers: str = "") -> str:
    message = "\0".join((tenant, kb, doc_id, chunk_id, readers)).encode()
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()[:18]).decode()


def readers_param(caller: Principal) -> str:
    """The caller's readers as a link carries them; empty for a tenant-wide caller."""
    return "" if caller.readers is None else ",".join(sorted(caller.readers))


def citation_url(base_url: str, secret: bytes, caller: Principal, kb: str, citation: Citation) -> str:
    """Where a citation opens: a web result's own URL, else this server's signed link to the chunk."""
    if citation["doc_id"].startswith(("http://", "https://")):
        return citation["doc_id"]
    readers = readers_param(caller)
    sig = signature(secret, caller.tenant, kb, citation["doc_id"], citation["chunk_id"], readers)
    return (f"{base_url.rstrip('/')}/v1/knowledge-bases/{quote(kb, safe='')}/documents/"
            f"{quote(citation['doc_id'], safe='')}/chunks/{quote(citation['chunk_id'], safe='')}?sig={sig}"
            + (f"&as={quote(readers, safe='')}" if readers else ""))


def linked_citations(base_url: str, secret: bytes, caller: Principal, kb: str, citations: list[Citation]) -> list[dict]:
    """The citations, each with the `url` it opens at (what the chat page links)."""
    return [{**citation, "url": citation_url(base_url, secret, caller, kb, citation)} for citation in citations]


def _load(
    state: AppState, kb: str, doc_id: str, chunk_id: str, readers: frozenset[str] | None
) -> tuple[str, CitedChunkPublic] | None:
    """The chunk's tenant and the chunk as it answers."""
    with state.stack.sessions() as session:
        found = cited_chunk(session, KbName(kb), doc_id, chunk_id, readers)
    if found is None:
        return None
    tenant, chunk, doc = found
    return tenant, CitedChunkPublic(kb=kb, doc_id=doc_id, chunk_id=chunk_id, filename=doc.filename, title=doc.title,
                                    ordinal=chunk.ordinal, page=(chunk.meta or {}).get("page"), text=chunk.text)


def _page(chunk: CitedChunkPublic) -> str:
    title = html.escape(chunk.title or chunk.filename)
    where = f"{html.escape(chunk.filename)} · {html.escape(chunk.kb)} · chunk {chunk.ordinal + 1}"
    if chunk.page is not None:
        where += f" · page {chunk.page}"
    return (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{title}</title><style>body{{font:16px/1.6 system-ui,'PingFang SC','Noto Sans CJK SC',sans-serif;"
        "max-width:46rem;margin:2rem auto;padding:0 1rem}p{white-space:pre-wrap}small{color:#666}"
        "@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}small{color:#999}}</style></head>"
        f"<body><h1>{title}</h1><small>{where}</small><p>{html.escape(chunk.text)}</p></body></html>"
    )


@router.get("/{doc_id}/chunks/{chunk_id}", response_model=CitedChunkPublic,
            responses={200: {"description": "JSON, or HTML for a browser (`Accept: text/html`).",
                             "content": {"text/html": {}}}})
async def get_chunk(
    kb: str, doc_id: str, chunk_id: str, request: Request, state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    sig: Annotated[str | None, Query(description="The signature of a link from an answer's citations.")] = None,
    readers: Annotated[str, Query(alias="as", description="The readers a link was made for (signed with it).")] = "",
) -> CitedChunkPublic | HTMLResponse:
    """One cited chunk: its text, document, position (and page for scans); HTML for a browser."""
    missing = HTTPException(404, f"chunk {chunk_id!r} of document {doc_id!r} does not exist in knowledge base {kb!r}")
    if sig is not None:
        entries = frozenset(readers.split(",")) if readers else None
        found = await asyncio.to_thread(_load, state, kb, doc_id, chunk_id, entries)
        secret = await asyncio.to_thread(link_secret, state.settings)
        expected = found and signature(secret, found[0], kb, doc_id, chunk_id, readers)
        if not found or not expected or not hmac.compare_digest(expected, sig):
            raise missing  # a wrong signature learns nothing about what exists
    else:
        caller = await authenticate_principal(request, state, credentials)
        found = await asyncio.to_thread(_load, state, kb, doc_id, chunk_id, caller.readers)
        if found is None or found[0] != caller.tenant:
            raise missing
    chunk = found[1]
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_page(chunk))
    return chunk
