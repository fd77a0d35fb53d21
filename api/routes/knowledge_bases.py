"""Knowledge bases of the caller's tenant: create, list, get, delete, search, and the retrieval profile."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from sieve.api.conversation import check_question
from sieve.api.deps import KnowledgeBaseDep, PrincipalDep, StateDep, TenantDep, WriterDep
from sieve.api.ingest_jobs import UPLOAD_SCHEME, discard_unused_original
from sieve.api.knowledge import TenantKnowledge
from sieve.api.schemas import KnowledgeBasePublic, KnowledgeBasesPublic, SearchHitPublic, SearchPublic
from sieve.degraded import Degraded
from sieve.retrievers.profile import PathName, RetrievalProfile
from sieve.retrievers.rerank import RerankerKind
from sieve.stores import crud
from sieve.stores.catalog import KnowledgeBaseNotEmpty, find_kb, get_or_create_kb, readable_counts
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


@router.post("", status_code=201)
async def create_knowledge_base(body: KnowledgeBaseCreate, state: StateDep, tenant: WriterDep) -> KnowledgeBasePublic:
    def create() -> KnowledgeBasePublic:
        with state.stack.sessions.begin() as session:
            if find_kb(session, tenant, body.name) is not None:  # before the rule: an older name still answers 409
                raise HTTPException(409, f"knowledge base {body.name!r} already exists")
            try:
                kb = get_or_create_kb(session, tenant, body.name)
            except InvalidKnowledgeBaseName as exc:
                raise HTTPException(422, f"name: {exc}") from None
            kb.description = body.description
            return KnowledgeBasePublic.of(kb)

    return await asyncio.to_thread(create)


@router.get("")
async def list_knowledge_bases(state: StateDep, caller: PrincipalDep) -> KnowledgeBasesPublic:
    return KnowledgeBasesPublic(data=await TenantKnowledge(state, caller).knowledge_bases())


@router.get("/{kb}")
async def get_knowledge_base(kb: KnowledgeBaseDep, state: StateDep, caller: PrincipalDep) -> KnowledgeBasePublic:
    def summary() -> KnowledgeBasePublic:
        with state.stack.sessions() as session:
            row = crud.knowledge_base(session, caller.tenant, kb)
            return KnowledgeBasePublic.of(row, *readable_counts(session, caller.tenant, caller.readers).get(kb.id, (0, 0)))

    return await asyncio.to_thread(summary)


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
async def search(kb: KnowledgeBaseDep, body: SearchRequest, state: StateDep, caller: PrincipalDep) -> SearchPublic:
    """Hybrid search under the KB's retrieval profile; hits best first, with what degraded.

    Each hit carries its rank and raw score per recall path (`ranks`, `path_scores`), its fused score
    (`score`, which orders hits before any reranker) and `relevance` (the reranker's score when
    `reranked`, else the embedding cosine); `timings_ms` is the time per stage."""
    query = check_question(body.query, state.settings.max_question_chars, "query")
    profile = await asyncio.to_thread(state.retriever.load_profile, kb.id)
    if body.paths:
        profile = profile.merged(paths=body.paths)
    result = await state.retriever.retrieve(query, SearchFilter(caller.tenant, kb.id, readers=caller.readers),
                                            body.k, profile)
    rerank_failed = {Degraded.RERANK_ERROR, Degraded.RERANK_TIMEOUT} & set(result.degraded)
    return SearchPublic(
        hits=[SearchHitPublic.model_validate(h, from_attributes=True) for h in result.hits],
        degraded=result.degraded,
        paths=profile.paths,
        reranker=profile.reranker.value,
        reranked=profile.reranker is not RerankerKind.NONE and bool(result.hits) and not rerank_failed,
        relevance_threshold=result.relevance_threshold,
        timings_ms=result.timings_ms,
    )


@router.get("/{kb}/profile")
async def get_profile(kb: KnowledgeBaseDep, state: StateDep, tenant: TenantDep) -> RetrievalProfile:
    def load() -> RetrievalProfile:
        with state.stack.sessions() as session:
            return RetrievalProfile.from_stored(crud.knowledge_base(session, tenant, kb).profile)

    return await asyncio.to_thread(load)


@router.put("/{kb}/profile")
async def put_profile(profile: RetrievalProfile, state: StateDep, tenant: WriterDep,
                      kb: KnowledgeBaseDep) -> RetrievalProfile:
    """Replaces the profile; the next search or question uses it (no restart, no cache).

    `RetrievalProfile` validates the body (the same checks as `sieve profile set`), and a reranker this
    server has no model or endpoint for is refused (400, naming the setting)."""
    profile.require_deployable(state.settings)

    def store() -> None:
        with state.stack.sessions.begin() as session:
            crud.knowledge_base(session, tenant, kb).profile = profile.model_dump(mode="json")

    await asyncio.to_thread(store)
    return profile
