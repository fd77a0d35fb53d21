"""`POST /v1/agent/stream`: the graph's own events as SSE, for our chat page and richer frontends;
`GET /v1/agent/threads/{thread_id}`: a conversation read back.

Events: route, rewrite, filter, sources, token, degraded, refusal, done (its citations carry the
signed `url` of their chunk), and error if the run fails. A client that disconnects cancels the run
(sse-starlette cancels this generator).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from sieve.api.conversation import as_sse, check_question, find_kb, run_turn, thread_turns
from sieve.api.deps import PrincipalDep, StateDep
from sieve.api.routes.chat import SSE_HEADERS, SSE_RESPONSE
from sieve.api.routes.citations import link_secret, linked_citations
from sieve.api.schemas import ThreadPublic
from sieve.graphs.shared.events import StreamEvent

router = APIRouter(prefix="/v1/agent", tags=["agent"])


class AgentRequest(BaseModel):
    question: str
    kb: str = Field(min_length=1, description="Knowledge base name.")
    thread_id: str | None = Field(
        None, min_length=1, max_length=200,
        description="Continue this conversation (the server keeps its history); omit for a standalone question.",
    )


@router.post("/stream", response_class=EventSourceResponse, responses=SSE_RESPONSE)
async def agent_stream(
    request: AgentRequest, http: Request, state: StateDep, caller: PrincipalDep
) -> EventSourceResponse:
    question = check_question(request.question, state.settings.max_question_chars)
    # admitted first: until its first event is out, running turns make way for this one
    arrival = state.turns.admit()
    try:
        known = await find_kb(state, caller.tenant, request.kb)
        secret = await asyncio.to_thread(link_secret, state.settings)
    except BaseException:
        arrival.gone()
        raise

    async def linked(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        async for event in events:
            if event.type == "done":
                citations = linked_citations(str(http.base_url), secret, caller, request.kb, event.data["citations"])
                event = StreamEvent("done", event.data | {"citations": citations})
            yield event

    events = run_turn(state, caller, question, request.kb, thread_id=request.thread_id, known=known, arrival=arrival)
    return EventSourceResponse(as_sse(linked(events), "run"), headers=SSE_HEADERS)


@router.get("/threads/{thread_id}")
async def agent_thread(
    thread_id: Annotated[str, Path(min_length=1, max_length=200)], http: Request, state: StateDep, caller: PrincipalDep
) -> ThreadPublic:
    """A conversation kept by the server, read back (the chat page restores one after a reload); only the
    caller that held it can read it."""
    turns = await thread_turns(state, caller, thread_id)
    if not turns:
        raise HTTPException(404, f"thread {thread_id!r} does not exist")
    secret = await asyncio.to_thread(link_secret, state.settings)
    for turn in turns:
        turn["citations"] = linked_citations(str(http.base_url), secret, caller, turn["kb"], turn["citations"])
    return ThreadPublic(thread_id=thread_id, turns=turns)
