"""The knowledge graph of a knowledge base: `POST .../graph/build` extracts it for documents already stored.

A knowledge base whose profile turns `graph_extraction` on after documents arrived has no graph for
them; the build extracts it from their stored chunks (nothing re-embedded but entity names) as a
job in the ingest worker, the engines' one writer.
"""

from __future__ import annotations

import asyncio
from functools import partial

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from sieve.api.deps import KnowledgeBaseDep, StateDep, WriterDep
from sieve.api.job_queue import JobFailed, JobProgress
from sieve.api.routes.jobs import accepted
from sieve.api.schemas import JobPublic
from sieve.api.state import AppState
from sieve.ingest.extraction import GraphBuildReport, build_graph, graph_refusal
from sieve.stores import crud
from sieve.stores.crud import KbId, KnowledgeBaseRef
from sieve.stores.metadata import JobKind

router = APIRouter(prefix="/v1/knowledge-bases/{kb}/graph", tags=["knowledge graph"])


class GraphBuildRequest(BaseModel):
    rebuild: bool = Field(False, description="Extract every document again, not only those without graph entries.")


def _graph_kb_id(state: AppState, tenant: str, kb: KnowledgeBaseRef) -> KbId:
    """The KB's id when it still exists (404 otherwise) and its profile wants a graph (JobFailed otherwise)."""
    with state.stack.sessions() as session:
        crud.knowledge_base(session, tenant, kb)
    if (refusal := graph_refusal(state.stack, kb.id)) is not None:
        raise JobFailed(refusal)
    return kb.id


def _build(state: AppState, tenant: str, kb: KnowledgeBaseRef, rebuild: bool, progress: JobProgress) -> GraphBuildReport:
    kb_id = _graph_kb_id(state, tenant, kb)  # again: the profile may have changed while the job waited
    return build_graph(state.stack, tenant, kb_id, rebuild=rebuild, on_progress=progress)


@router.post("/build", status_code=202)
async def build(response: Response, state: StateDep, tenant: WriterDep, kb: KnowledgeBaseDep,
                body: GraphBuildRequest | None = None) -> JobPublic:
    """Extracts entities and relations of the KB's documents that have none yet (all with `rebuild`).

    Poll the returned job (`GET /v1/jobs/{id}`): `progress` counts documents, the report says how many
    were extracted, skipped and failed. 409 when the KB's profile has `graph_extraction` off.
    """
    try:
        await asyncio.to_thread(_graph_kb_id, state, tenant, kb)
    except JobFailed as exc:
        raise HTTPException(409, str(exc)) from None
    progress = JobProgress()
    rebuild = body.rebuild if body is not None else False
    job = await state.jobs.submit(tenant, kb.name, JobKind.GRAPH_BUILD, "", partial(_build, state, tenant, kb, rebuild, progress),
                                  progress)
    return accepted(job, response)
