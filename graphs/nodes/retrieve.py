"""Retrieve: hybrid search over the knowledge base under the tenant/KB/allow-list filter."""

from __future__ import annotations

from langgraph.runtime import Runtime

from sieve.graphs.context import GraphContext, resolve, search_filter
from sieve.graphs.history import question
from sieve.graphs.state import Passage, State
from sieve.retrievers.types import Hit


async def retrieve(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    degraded = list(state.get("degraded", []))
    attempt = state.get("attempt", 0) + 1
    if ctx.retriever is None:
        return {"passages": [], "attempt": attempt, "degraded": [*degraded, "retrieval_error"]}
    query = state.get("rewritten_query") or question(state)
    try:
        result = await ctx.retriever.retrieve(
            query, search_filter(state, state.get("allowed_doc_ids")), ctx.thresholds.top_k
        )
    except Exception:  # reported as degraded; grading then refuses with "retrieval unavailable"
        return {"passages": [], "attempt": attempt, "degraded": [*degraded, "retrieval_error"]}
    degraded += [flag for flag in result.degraded if flag not in degraded]
    return {"passages": [to_passage(hit) for hit in result.hits], "attempt": attempt, "degraded": degraded,
            "relevance_threshold": result.relevance_threshold}


def to_passage(hit: Hit) -> Passage:
    passage = Passage(
        chunk_id=hit.chunk_id,
        doc_id=hit.doc_id,
        filename=hit.filename or hit.title,
        text=hit.text,
        score=hit.score,
        relevance=hit.relevance,
        path_scores=dict(hit.path_scores),
        title=hit.title,
    )
    if hit.location:
        passage["location"] = hit.location
    return passage
