"""The main query graph: route → (chat | web_search | rewrite → narrow → retrieve) → grade → answer | refuse.

`graph` (no checkpointer) is what `langgraph.json` serves as `agentic_rag`; the runner attaches its
thread store to a copy of it, and `build_graph(checkpointer)` compiles one with a checkpointer built in.
"""

from __future__ import annotations

from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from sieve.degraded import any_timeout
from sieve.graphs.agentic_rag.nodes.answer import answer
from sieve.graphs.agentic_rag.nodes.chat import chat
from sieve.graphs.agentic_rag.nodes.refuse import refuse
from sieve.graphs.agentic_rag.nodes.rewrite import rewrite
from sieve.graphs.agentic_rag.nodes.route import route
from sieve.graphs.agentic_rag.nodes.web_search import web_search
from sieve.graphs.shared.context import GraphContext, resolve
from sieve.graphs.shared.nodes.common import timed
from sieve.graphs.shared.nodes.grade import grade
from sieve.graphs.shared.nodes.narrow import narrow
from sieve.graphs.shared.nodes.retrieve import retrieve
from sieve.graphs.shared.state import InputState, State

# Edges are coroutines: LangGraph runs a plain function in a worker thread, a hop that costs more
# than the decision itself.


async def after_route(state: State) -> Literal["chat", "web_search", "rewrite"]:
    if state.get("route") == "chat":
        return "chat"
    return "web_search" if state.get("route") == "web" else "rewrite"


async def after_rewrite(state: State) -> Literal["narrow", "retrieve"]:
    # the corrective retry keeps the narrowing of the first attempt
    return "narrow" if state.get("attempt", 0) == 0 else "retrieve"


async def after_narrow(state: State) -> Literal["retrieve", "answer", "refuse"]:
    if state.get("kept"):
        return "answer"  # the metadata rows answer the question
    if state.get("allowed_doc_ids") == []:
        return "refuse"
    return "retrieve"


async def after_web_search(state: State) -> Literal["grade", "refuse"]:
    return "grade" if state.get("passages") else "refuse"


async def after_grade(state: State, runtime: Runtime[GraphContext]) -> Literal["answer", "rewrite", "refuse"]:
    if state.get("kept"):
        return "answer"
    if state.get("allowed_doc_ids") == []:
        return "refuse"  # nothing can be searched (an unknown knowledge base): a retry finds nothing either
    # the bounded corrective loop: `attempt` counts retrievals, so this allows max_corrective more
    max_corrective = (await resolve(runtime.context)).thresholds.max_corrective
    # a retrieval that ran out of time would run out again: retrying only doubles the wait
    timed_out = any_timeout(state.get("degraded", []))
    if state.get("route") == "kb" and state.get("attempt", 0) <= max_corrective and not timed_out:
        return "rewrite"
    return "refuse"


def build_graph(
    checkpointer: BaseCheckpointSaver[str] | None = None,
) -> CompiledStateGraph[State, GraphContext, InputState, State]:
    builder = StateGraph(State, context_schema=GraphContext, input_schema=InputState)
    for name, node in [
        ("route", route), ("chat", chat), ("web_search", web_search), ("rewrite", rewrite),
        ("narrow", narrow), ("retrieve", retrieve), ("grade", grade), ("answer", answer), ("refuse", refuse),
    ]:
        builder.add_node(name, timed(name, node))
    builder.add_edge(START, "route")
    builder.add_conditional_edges("route", after_route)
    builder.add_conditional_edges("rewrite", after_rewrite)
    builder.add_conditional_edges("narrow", after_narrow)
    builder.add_conditional_edges("web_search", after_web_search)
    builder.add_edge("retrieve", "grade")
    builder.add_conditional_edges("grade", after_grade)
    builder.add_edge("chat", END)
    builder.add_edge("answer", END)
    builder.add_edge("refuse", END)
    return builder.compile(checkpointer=checkpointer, name="agentic_rag")


graph = build_graph()
