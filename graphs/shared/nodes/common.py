"""What the nodes of every graph share: the node type, its timing, and the unknown-knowledge-base outcome."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeVar, cast

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.history import question
from sieve.graphs.shared.state import State
from sieve.prompts import refuse as prompts
from sieve.prompts.language import detect

S = TypeVar("S", bound=Mapping[str, Any])
"""A graph's state (the query graph's `State`, the research graph's `ResearchState`)."""


class Node(Protocol[S]):
    """A node of one of our graphs: LangGraph passes the run's context as the `runtime` argument, by name."""

    def __call__(self, state: S, runtime: Runtime[GraphContext]) -> Awaitable[S]: ...


def timed(name: str, node: Node[S]) -> Node[S]:
    """Reports the node's wall time in `timings_ms` (its reducer sums a node the corrective loop reruns)."""

    # the state's type is a type variable here, so LangGraph reads the node's input as the graph's whole state
    async def run(state: S, runtime: Runtime[GraphContext]) -> S:
        started = time.perf_counter()
        update = await node(state, runtime)
        spent = {name: round((time.perf_counter() - started) * 1000, 3)}
        reset = update.get("timings_ms")
        # the turn's first node resets the timings: its own time is the first entry
        timings = Overwrite({**reset.value, **spent}) if isinstance(reset, Overwrite) else spent
        return cast(S, {**update, "timings_ms": timings})  # both states have `timings_ms`

    run.__name__ = name
    return run


def unknown_kb(state: State) -> State:
    """The update of a node that found the turn's knowledge base missing: nothing can be searched
    (an empty allow-list, so nothing retries) and the refusal names it."""
    reason = prompts.REASONS["unknown_kb"][detect(question(state))].format(kb=state.get("kb", ""))
    return {"passages": [], "allowed_doc_ids": [], "refusal_reason": reason}
