"""Knowledge bases of the caller's tenant: create, list, get, delete, search, and the retrieval profile."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from sieve.api.conversation import check_kb, check_question
from sieve.api.deps import PrincipalDep, StateDep, TenantDep, WriterDep
from sieve.api.ingest_jobs import UPLOAD_SCHEME, discard_unused_original
from sieve.api.knowledge import TenantKnowledge, hit_json, kb_json
from sieve.api.state import AppState
from sieve.degraded import Degraded
from sieve.retrievers.profile import PathName, RetrievalProfile
from sieve.retrievers.rerank import RerankerKind
from sieve.stores.acl import Principal
from sieve.stores.catalog import KnowledgeBaseNotEmpty, find_kb, get_kb, get_or_create_kb, readable_counts
from sieve.stores.names import RULE, InvalidKnowledgeBaseName
from sieve.stores.types import SearchFilter

router = APIRouter(prefix="/v1/knowledge-bases", tags=["knowledge bases"])


class KnowledgeBaseCreate(BaseModel):
    name: str = Field(max_length=200, description=f"Unique within the tenant: {RULE}.")
    description: str = Field("", max_length=2000)


class SearchRequest(BaseModel):
    query: str
    k: int = Field(5, ge=1, le=50)
    paths: list[PathName] | None = Field(None, min_length=1, description="Recall paths for this query only "
                                         "(default: the profile's); the stored profile is unchanged.")


def _summary(state: AppState, caller: Principal, name: str) -> dict[str, Any]:
    with state.stack.sessions() as session:
        kb = get_kb(session, caller.tenant, name)
        return kb_json(kb, *readable_counts(session, caller.tenant, caller.readers).get(kb.id, (0, 0)))


@router.post("", status_code=201)
async def create_knowledge_base(body: KnowledgeBaseCreate, state: StateDep, tenant: WriterDep) -> dict[str, Any]:
    def create() -> dict[str, Any]:
        with state.stack.sessions.begin() as session:
            if find_kb(session, tenant, body.name) is not None:  # before the rule: an older name still answers 409
                raise HTTPException(409, f"knowledge base {body.name!r} already exists")
            try:
                kb = get_or_create_kb(session, tenant, body.name)
            except InvalidKnowledgeBaseName as exc:
                raise HTTPException(422, f"name: {exc}") from None
            kb.description = body.description
            return kb_json(kb, 0)

    return await asyncio.to_thread(create)


@router.get("")
async def list_knowledge_bases(state: StateDep, caller: PrincipalDep) -> dict[str, Any]:
    return {"data": await TenantKnowledge(state, caller).knowledge_bases()}


@router.get("/{kb}")
async def get_knowledge_base(kb: str, state: StateDep, caller: PrincipalDep) -> dict[str, Any]:
    return await asyncio.to_thread(_summary, state, caller, kb)


@router.delete("/{kb}", status_code=204)
async def delete_knowledge_base(kb: str, state: StateDep, tenant: WriterDep) -> Response:
    """Deletes the knowledge base with its documents (metadata DB, BM25, vectors, graph), its profile,
    and uploaded originals no other document uses, before answering."""
    try:
        deleted = await state.jobs.write(state.ingestor.delete_knowledge_base, tenant, kb)
    except KnowledgeBaseNotEmpty as busy:
        raise HTTPException(409, str(busy)) from busy
    for doc in deleted:
        if doc.source_uri.startswith(UPLOAD_SCHEME):
            await state.jobs.write(discard_unused_original, state, doc.content_hash, doc.filename)
    return Response(status_code=204)


@router.post("/{kb}/search")
async def search(kb: str, body: SearchRequest, state: StateDep, caller: PrincipalDep) -> dict[str, Any]:
    """Hybrid search under the KB's retrieval profile; hits best first, with what degraded.

    Each hit carries its rank and raw score per recall path (`ranks`, `path_scores`), its fused score
    (`score`, which orders hits before any reranker) and `relevance` (the reranker's score when
    `reranked`, else the embedding cosine); `timings_ms` is the time per stage."""
    query = check_question(body.query, state.settings.max_question_chars, "query")
    kb_id = await check_kb(state, caller.tenant, kb)
    profile = await asyncio.to_thread(state.retriever.load_profile, kb_id)
    if body.paths:
        profile = profile.merged(paths=body.paths)
    result = await state.retriever.retrieve(query, SearchFilter(caller.tenant, kb_id, readers=caller.readers),
                                            body.k, profile)
    rerank_failed = {Degraded.RERANK_ERROR, Degraded.RERANK_TIMEOUT} & set(result.degraded)
    return {
        "hits": [hit_json(h) | {"path_scores": h.path_scores} for h in result.hits],
        "degraded": result.degraded,
        "paths": profile.paths,
        "reranker": profile.reranker.value,
        "reranked": profile.reranker is not RerankerKind.NONE and bool(result.hits) and not rerank_failed,
        "relevance_threshold": result.relevance_threshold,
        "timings_ms": result.timings_ms,
    }


@router.get("/{kb}/profile")
async def get_profile(kb: str, state: StateDep, tenant: TenantDep) -> RetrievalProfile:
    def load() -> RetrievalProfile:
        with state.stack.sessions() as session:
            return RetrievalProfile.from_stored(get_kb(session, tenant, kb).profile)

    return await asyncio.to_thread(load)


@router.put("/{kb}/profile")
async def put_profile(kb: str, profile: RetrievalProfile, state: StateDep, tenant: WriterDep) -> RetrievalProfile:
    """Replaces the profile; the next search or question uses it (no restart, no cache).

    `RetrievalProfile` validates the body (the same checks as `sieve profile set`)."""

    def store() -> None:
        with state.stack.sessions.begin() as session:
            get_kb(session, tenant, kb).profile = profile.model_dump(mode="json")

    await asyncio.to_thread(store)
    return profile
