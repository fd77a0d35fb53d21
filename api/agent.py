"""`POST /v1/agent/stream`: the graph's own events as SSE, for our chat page and richer frontends.

Events: route, rewrite, filter, sources, token, degraded, refusal, done, and error if the run
fails. A client that disconnects cancels the run (sse-starlette cancels this generator).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from sieve.api.chat import SSE_HEADERS
from sieve.api.conversation import check_kb, check_question, run_turn
from sieve.api.deps import StateDep, TenantDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/agent", tags=["agent"])


class AgentRequest(BaseModel):
    question: str
    kb: str = Field(min_length=1, description="Knowledge base name.")
    thread_id: str | None = Field(
        None, min_length=1, max_length=200,
        description="Continue this conversation (the server keeps its history); omit for a standalone question.",
    )


@router.post("/stream", response_class=EventSourceResponse)
async def agent_stream(request: AgentRequest, state: StateDep, tenant: TenantDep) -> EventSourceResponse:
    question = check_question(request.question, state.settings.max_question_chars)
    await check_kb(state, tenant, request.kb)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in run_turn(state, tenant, question, request.kb, thread_id=request.thread_id):
                yield ServerSentEvent(event=event.type, data=json.dumps(event.data, ensure_ascii=False))
        except Exception as exc:
            log.exception("agent stream failed")
            message = f"the run failed on the server ({type(exc).__name__}); see its log"
            yield ServerSentEvent(event="error", data=json.dumps({"message": message}))

    return EventSourceResponse(events(), headers=SSE_HEADERS)
