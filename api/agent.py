"""`POST /v1/agent/stream`: the graph's own events as SSE, for our chat page and richer frontends.

Events: route, rewrite, filter, sources, token, degraded, refusal, done, and error if the run
fails. A client that disconnects cancels the run (sse-starlette cancels this generator).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from sieve.api.chat import SSE_HEADERS
from sieve.api.conversation import as_sse, check_kb, check_question, run_turn
from sieve.api.deps import PrincipalDep, StateDep

router = APIRouter(prefix="/v1/agent", tags=["agent"])


class AgentRequest(BaseModel):
    question: str
    kb: str = Field(min_length=1, description="Knowledge base name.")
    thread_id: str | None = Field(
        None, min_length=1, max_length=200,
        description="Continue this conversation (the server keeps its history); omit for a standalone question.",
    )


@router.post("/stream", response_class=EventSourceResponse)
async def agent_stream(request: AgentRequest, state: StateDep, caller: PrincipalDep) -> EventSourceResponse:
    question = check_question(request.question, state.settings.max_question_chars)
    await check_kb(state, caller.tenant, request.kb)

    events = run_turn(state, caller, question, request.kb, thread_id=request.thread_id)
    return EventSourceResponse(as_sse(events, "run"), headers=SSE_HEADERS)
