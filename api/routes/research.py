"""`POST /v1/research/stream`: deep research over one knowledge base, its steps as SSE.

Events: plan, step (one per sub-query), degraded, stop (the reason), token (the report), done (the
result: report, sections, citations, refused parts, stop reason, steps), and error if the run fails.
A research question stands alone (no thread). A client that disconnects cancels the run.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from sieve.api.conversation import as_sse, check_kb, check_question, run_research
from sieve.api.deps import PrincipalDep, StateDep
from sieve.api.routes.chat import SSE_HEADERS, SSE_RESPONSE

router = APIRouter(prefix="/v1/research", tags=["research"])


class ResearchRequest(BaseModel):
    question: str
    kb: str = Field(min_length=1, description="Knowledge base name.")


@router.post("/stream", response_class=EventSourceResponse, responses=SSE_RESPONSE)
async def research_stream(request: ResearchRequest, state: StateDep, caller: PrincipalDep) -> EventSourceResponse:
    question = check_question(request.question, state.settings.max_question_chars)
    await check_kb(state, caller.tenant, request.kb)
    return EventSourceResponse(as_sse(run_research(state, caller, question, request.kb), "research"),
                               headers=SSE_HEADERS)
