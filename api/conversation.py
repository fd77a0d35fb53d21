"""One turn of the query graph for a caller: checked input, caller-scoped threads, metrics.

History arrives two ways. Our own clients name a `thread_id` and the server keeps the dialogue.
OpenAI-style clients resend the whole dialogue on every request; the server then treats the
messages as the truth (an edited or regenerated history is answered as sent): they are written to a
throwaway thread that the turn continues, and the thread is deleted when the turn ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import anyio
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from sse_starlette import ServerSentEvent

from sieve.api.admission import Arrival
from sieve.api.state import AppState
from sieve.errors import InvalidInput, TooLarge
from sieve.graphs.agentic_rag.graph import graph as agentic_rag
from sieve.graphs.agentic_rag.runner import AskResult, stream_answer, stream_turn
from sieve.graphs.deep_research.runner import stream_research
from sieve.graphs.shared.events import StreamEvent
from sieve.graphs.shared.history import text_of
from sieve.graphs.shared.state import State
from sieve.graphs.shared.wiring import KnownKnowledgeBase, find_knowledge_base, for_turn
from sieve.stores.acl import Principal
from sieve.stores.crud import KbId

log = logging.getLogger(__name__)


def check_question(question: str, limit: int, what: str = "question") -> str:
    text = question.strip()
    if not text:
        raise InvalidInput(f"the {what} is empty")
    if len(text) > limit:
        raise TooLarge(f"the {what} has {len(text)} characters; the limit is {limit}")
    return text


async def check_kb(state: AppState, tenant: str, kb: str) -> KbId:
    """The KB's id; `KnowledgeBaseNotFound` before any streaming starts."""
    return (await find_kb(state, tenant, kb)).id


async def find_kb(state: AppState, tenant: str, kb: str) -> KnownKnowledgeBase:
    """The KB with its retrieval profile, for a turn to use throughout; `KnowledgeBaseNotFound` before any
    streaming starts."""
    return await asyncio.to_thread(find_knowledge_base, state.stack, tenant, kb)


def caller_thread(caller: Principal, thread_id: str) -> str:
    """Thread ids are scoped to the caller: one tenant can never continue (or read) another's thread,
    nor one user another's, nor the same user after its groups changed (the thread's answers were
    found with the old ones)."""
    if caller.readers is None:
        return json.dumps([caller.tenant, thread_id], ensure_ascii=False)
    return json.dumps([caller.tenant, sorted(caller.readers), thread_id], ensure_ascii=False)


async def thread_turns(state: AppState, caller: Principal, thread_id: str) -> list[dict[str, Any]]:
    """The caller's thread, one entry per turn, oldest first: the question, the knowledge base and the
    turn's outcome (`done`'s fields); empty when the caller has no such thread."""
    graph = agentic_rag.copy(update={"checkpointer": state.threads})
    config: RunnableConfig = {"configurable": {"thread_id": caller_thread(caller, thread_id)}}
    turns = []
    # one checkpoint per turn (runs write theirs when they end), newest first
    async for snapshot in graph.aget_state_history(config):
        # a checkpoint of this graph holds its State (langgraph types the values as a plain dict)
        values = cast(State, snapshot.values)
        questions = [m for m in values.get("messages", []) if isinstance(m, HumanMessage)]
        if questions and "answer" in values:
            turn = {"question": text_of(questions[-1]), "kb": values.get("kb", "")}
            turns.append(turn | AskResult.from_state(values).to_json())
    return turns[::-1]


async def run_turn(
    state: AppState,
    caller: Principal,
    question: str,
    kb: str,
    *,
    thread_id: str | None = None,
    history: Sequence[BaseMessage] = (),
    known: KnownKnowledgeBase | None = None,
    arrival: Arrival | None = None,
) -> AsyncIterator[StreamEvent]:
    """The turn's events, ending with `done`; the question and KB must already be checked (`known`: the
    KB as that check found it, used for the whole turn). `arrival` ends with the turn's first event."""
    tenant, readers = caller.tenant, caller.readers
    context = state.context if known is None else for_turn(state.context, known)
    thread = caller_thread(caller, thread_id) if thread_id else None
    route = "none"
    try:
        if history:
            thread = caller_thread(caller, f"history:{uuid.uuid4().hex}")
            await _seed(state.threads, thread, history, tenant, kb)
        events = (
            stream_turn(state.threads, question, kb, thread, tenant, context, readers)
            if thread
            else stream_answer(question, kb=kb, tenant=tenant, context=context, readers=readers)
        )
        async with state.turns.turn() as pacer:
            async for event in events:
                if event.type == "route":
                    route = event.data["route"]
                elif event.type == "done":
                    state.observe_run(event.data)
                yield event
                if arrival is not None:
                    arrival.first_event()
                # the turn is routed: the rest waits for a slot (the graph holds still until read again)
                await pacer.after_event()
    except asyncio.CancelledError:  # the client went away: the run stops with it
        state.metrics.runs.labels(route, "cancelled").inc()
        raise
    except Exception:
        state.metrics.runs.labels(route, "error").inc()
        raise
    finally:
        if arrival is not None:
            arrival.gone()
        if history and thread:
            with anyio.CancelScope(shield=True):  # a cancelled turn still removes its throwaway thread
                await state.threads.adelete_thread(thread)


async def run_research(state: AppState, caller: Principal, question: str, kb: str) -> AsyncIterator[StreamEvent]:
    """Deep research's events, ending with `done`; the question and KB must already be checked."""
    try:
        async for event in stream_research(question, kb=kb, tenant=caller.tenant, context=state.context,
                                           readers=caller.readers):
            if event.type == "done":
                state.observe_run(event.data)
            yield event
    except asyncio.CancelledError:  # the client went away: the research stops with it
        state.metrics.runs.labels("research", "cancelled").inc()
        raise
    except Exception:
        state.metrics.runs.labels("research", "error").inc()
        raise


async def research_once(state: AppState, caller: Principal, question: str, kb: str) -> dict[str, Any]:
    """The `done` data of deep research (what `sieve research --json` prints)."""
    done: dict[str, Any] = {}
    async for event in run_research(state, caller, question, kb):
        if event.type == "done":
            done = event.data
    return done


async def as_sse(events: AsyncIterator[StreamEvent], what: str) -> AsyncIterator[ServerSentEvent]:
    """A run's events as SSE; a run that fails ends with an `error` event saying so (its log says why)."""
    try:
        async for event in events:
            yield ServerSentEvent(event=event.type, data=json.dumps(event.data, ensure_ascii=False))
    except Exception as exc:
        log.exception("%s stream failed", what)
        message = f"the {what} failed on the server ({type(exc).__name__}); see its log"
        yield ServerSentEvent(event="error", data=json.dumps({"message": message}))


async def ask_once(
    state: AppState,
    caller: Principal,
    question: str,
    kb: str,
    *,
    thread_id: str | None = None,
    history: Sequence[BaseMessage] = (),
    known: KnownKnowledgeBase | None = None,
    arrival: Arrival | None = None,
) -> dict[str, Any]:
    """The `done` data of one turn (what `sieve ask --json` prints)."""
    done: dict[str, Any] = {}
    async for event in run_turn(state, caller, question, kb, thread_id=thread_id, history=history, known=known,
                                arrival=arrival):
        if event.type == "done":
            done = event.data
    return done


async def _seed(
    saver: BaseCheckpointSaver[str], thread: str, history: Sequence[BaseMessage], tenant: str, kb: str
) -> None:
    # written as if `answer` had just run: the new question starts a fresh turn after it; the
    # conversation was with this knowledge base, so a pronoun follow-up stays there
    values = {"messages": list(history), "tenant": tenant, "kb": kb, "route": "kb"}
    graph = agentic_rag.copy(update={"checkpointer": saver})
    await graph.aupdate_state({"configurable": {"thread_id": thread}}, values, as_node="answer")
