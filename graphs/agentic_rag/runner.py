"""Running the query graph for the CLI and the API: one answer (`ask`) or a stream of events.

Threads persist in `<SIEVE_HOME>/threads.sqlite` (`stores/threads.py`), or in PostgreSQL (AsyncPostgresSaver)
when SIEVE_DATABASE_URL names it: the same `thread_id` continues a conversation, so follow-ups resolve
against it. Without a `thread_id` a question stands alone and nothing is written.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Durability, StreamMode

from sieve.graphs.agentic_rag.graph import graph as agentic_rag
from sieve.graphs.shared.context import GraphContext, default_context, resolve
from sieve.graphs.shared.events import StreamEvent, degraded_events, sentence_pieces
from sieve.graphs.shared.history import text_of
from sieve.graphs.shared.state import Citation, InputState, State
from sieve.settings import Settings, get_settings

# nodes whose messages are the text the user reads
_SPEAKING_NODES = {"answer", "chat", "refuse"}


@dataclass
class AskResult:
    """One turn's outcome; `to_json()` is exactly what `sieve ask --json` prints."""

    route: str
    rewritten_query: str
    answer: str
    refused: bool
    refusal_reason: str
    citations: list[Citation] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: State) -> AskResult:
        return cls(
            route=state.get("route", "kb"),
            rewritten_query=state.get("rewritten_query", ""),
            answer=state.get("answer", ""),
            refused=state.get("refused", False),
            refusal_reason=state.get("refusal_reason", "") if state.get("refused") else "",
            citations=list(state.get("citations", [])),
            degraded=list(state.get("degraded", [])),
            timings_ms=dict(state.get("timings_ms", {})),
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@asynccontextmanager
async def open_threads(settings: Settings | None = None) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """The thread store: in PostgreSQL when the metadata DB is there (shared by every worker),
    else `threads.sqlite` under the settings' home (default: the process settings)."""
    settings = settings or get_settings()
    if settings.is_postgres:
        from sieve.stores.threads import postgres_threads

        async with postgres_threads(settings.resolved_database_url) as saver:
            yield saver
        return
    from sieve.stores.threads import sqlite_threads

    settings.home.mkdir(parents=True, exist_ok=True)
    async with sqlite_threads(settings.home / "threads.sqlite") as saver:
        yield saver


async def ask(
    question: str,
    *,
    kb: str,
    thread_id: str | None = None,
    tenant: str | None = None,
    context: GraphContext | None = None,
    settings: Settings | None = None,
    readers: frozenset[str] | None = None,
) -> AskResult:
    """Answer one question (continuing `thread_id` when given)."""
    result: AskResult | None = None
    async for event in stream_answer(question, kb=kb, thread_id=thread_id, tenant=tenant, context=context, settings=settings,
                                     readers=readers):
        if event.type == "done":
            result = AskResult(**event.data)
    assert result is not None  # stream_answer always ends with `done`
    return result


async def stream_answer(
    question: str,
    *,
    kb: str,
    thread_id: str | None = None,
    tenant: str | None = None,
    context: GraphContext | None = None,
    settings: Settings | None = None,
    readers: frozenset[str] | None = None,
) -> AsyncIterator[StreamEvent]:
    """Run one turn and yield its events as they happen, ending with `done`; only documents `readers`
    may read are searched (None: every document of the tenant)."""
    if thread_id is None:  # nothing to keep: no checkpoint is read or written
        async for event in stream_turn(None, question, kb, "", tenant, context, readers):
            yield event
        return
    async with open_threads(settings) as saver:
        async for event in stream_turn(saver, question, kb, thread_id, tenant, context, readers):
            yield event


async def stream_turn(
    saver: BaseCheckpointSaver[str] | None,
    question: str,
    kb: str,
    thread_id: str,
    tenant: str | None,
    context: GraphContext | None,
    readers: frozenset[str] | None = None,
) -> AsyncIterator[StreamEvent]:
    """One turn on a thread store the caller owns (the server keeps one open for its lifetime); without
    one (None) the question stands alone and `thread_id` is unused."""
    # the store is attached to a copy (compiling again costs ~10 ms)
    graph = agentic_rag if saver is None else agentic_rag.copy(update={"checkpointer": saver})
    config: RunnableConfig = {} if saver is None else {"configurable": {"thread_id": thread_id}}
    inputs: InputState = {
        "messages": [HumanMessage(question)],
        "tenant": tenant or get_settings().default_tenant,
        # set on every turn: a thread never keeps the readers of an earlier turn
        "readers": None if readers is None else sorted(readers),
        "kb": kb,
    }
    if context is None:
        context = await asyncio.to_thread(default_context)  # may open stores: off the loop
    # only an LLM streams its answer in pieces; LangGraph's message stream costs every node a callback, so
    # deterministic mode reads the answer from the node's update instead
    streams_tokens = (await resolve(context)).llm is not None
    reported: list[str] = []
    final = State()
    # one checkpoint per turn, written when it ends: a turn is short, and a crash mid-turn loses
    # only that turn, while a checkpoint after every node costs several milliseconds; the turn's
    # outcome is the last `values` part, not the checkpoint read back
    modes: list[StreamMode] = ["updates", "values", "messages"] if streams_tokens else ["updates", "values"]
    durability: Durability | None = None if saver is None else "exit"  # LangGraph warns of it without a store
    async for part in graph.astream(inputs, config, context=context, stream_mode=modes, durability=durability, version="v2"):
        if part["type"] == "values":
            final = part["data"]
        elif part["type"] == "messages":
            message, metadata = part["data"]
            if metadata.get("langgraph_node") in _SPEAKING_NODES:
                for event in _tokens(message):
                    yield event
        elif part["type"] == "updates":
            updates: dict[str, State | None] = part["data"]  # node -> its update (None: it changed nothing)
            for node, update in updates.items():
                if not streams_tokens and node in _SPEAKING_NODES:
                    for message in (update or State()).get("messages", []):
                        for event in _tokens(message):
                            yield event
                for event in _events_of(node, update or State(), reported):
                    yield event
    yield StreamEvent("done", AskResult.from_state(final).to_json())


def _tokens(message: BaseMessage) -> list[StreamEvent]:
    """What the user reads of a speaking node's message: an LLM streams its own chunks; a deterministic
    answer arrives whole and is sent a sentence at a time."""
    if not isinstance(message, (AIMessage, AIMessageChunk)):
        return []
    text = text_of(message)
    pieces = [text] if isinstance(message, AIMessageChunk) else sentence_pieces(text)
    return [StreamEvent("token", {"text": piece}) for piece in pieces if piece]


def _events_of(node: str, update: State, reported: list[str]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    if node == "route":
        events.append(StreamEvent("route", {"route": update.get("route", "kb")}))
    elif node == "rewrite":
        events.append(StreamEvent("rewrite", {"rewritten_query": update.get("rewritten_query", "")}))
    elif node == "narrow":
        events.append(StreamEvent("filter", {
            "sql": update.get("sql"), "doc_ids": update.get("allowed_doc_ids"), "reason": update.get("narrow_reason", ""),
        }))
    elif node == "refuse":
        events.append(StreamEvent("refusal", {"reason": update.get("refusal_reason", "")}))
    if node in ("grade", "narrow") and update.get("kept"):
        sources = [
            {"doc_id": p["doc_id"], "filename": p["filename"], "chunk_id": p["chunk_id"], "relevance": p["relevance"]}
            for p in update["kept"]
        ]
        events.append(StreamEvent("sources", {"sources": sources}))
    events.extend(degraded_events(update, reported))
    return events
