"""Retrieve: hybrid search over the knowledge base under the tenant/KB/allow-list filter."""

from __future__ import annotations

import logging

from langgraph.runtime import Runtime

from sieve.degraded import Degraded
from sieve.graphs.shared.context import GraphContext, resolve, search_filter
from sieve.graphs.shared.history import question
from sieve.graphs.shared.nodes.common import unknown_kb
from sieve.graphs.shared.state import Passage, State
from sieve.retrievers.types import Hit
from sieve.stores.catalog import KnowledgeBaseNotFound

logger = logging.getLogger(__name__)


async def retrieve(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    attempt = state.get("attempt", 0) + 1
    if ctx.retriever is None:
        logger.error("no retriever is configured; knowledge-base questions are refused")
        return {"passages": [], "attempt": attempt, "degraded": [Degraded.RETRIEVAL_ERROR]}
    query = state.get("rewritten_query") or question(state)
    try:
        result = await ctx.retriever.retrieve(
            query, search_filter(state, state.get("allowed_doc_ids")), ctx.thresholds.top_k
        )
    except KnowledgeBaseNotFound:  # the caller's mistake, not an outage: the refusal names the KB
        return {**unknown_kb(state), "attempt": attempt}
    except Exception:  # reported as degraded; grading then refuses with "retrieval unavailable"
        logger.exception("retrieval failed; the question is refused as unavailable")
        return {"passages": [], "attempt": attempt, "degraded": [Degraded.RETRIEVAL_ERROR]}
    return {"passages": [to_passage(hit) for hit in result.hits], "attempt": attempt, "degraded": result.degraded,
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
