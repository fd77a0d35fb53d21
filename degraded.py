"""Degradation flags: every fallback a question can take, by name.

Answers, search results, stream events and metrics report them in `degraded`; clients read the
strings, so a value never changes once shipped. Graph state stores the plain strings (checkpoints
need no custom type); code builds and tests them through this enum, never by spelling or suffix.
This module imports nothing of the project, so models, retrievers and graphs can all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Degraded(StrEnum):
    """One fallback that happened during a request."""

    LLM_TIMEOUT = "llm_timeout"
    """The chat LLM did not answer in time; the rest of the turn is deterministic."""
    LLM_ERROR = "llm_error"
    """The chat LLM failed (or returned nothing usable); the rest of the turn is deterministic."""
    EMBEDDER_TIMEOUT = "embedder_timeout"
    """A query-time embedding waited out its budget; the breaker opened."""
    EMBEDDER_ERROR = "embedder_error"
    """A query-time embedding failed; the breaker opened."""
    EMBEDDER_CIRCUIT_OPEN = "embedder_circuit_open"
    """The embedder's breaker was open (an earlier timeout or error): nothing was embedded and nothing waited."""
    EMBEDDER_BUSY = "embedder_busy"
    """The embedder's workers were busy (load, not a slow model): its budget ran out in their queue; the breaker stays closed."""
    BM25_TIMEOUT = "bm25_timeout"
    """The BM25 path ran past its budget; the other paths answered."""
    BM25_ERROR = "bm25_error"
    """The BM25 path's backend failed; the other paths answered."""
    DENSE_TIMEOUT = "dense_timeout"
    """The dense path (query embedding plus vector search) ran past its budget."""
    DENSE_ERROR = "dense_error"
    """The dense path failed (the embedder or the vector backend)."""
    GRAPH_TIMEOUT = "graph_timeout"
    """The knowledge-graph path ran past its budget."""
    GRAPH_ERROR = "graph_error"
    """The knowledge-graph path's backend failed."""
    GRAPH_EMPTY = "graph_empty"
    """The knowledge-graph path was asked for but the knowledge base has no graph (nothing extracted yet)."""
    IMAGE_TIMEOUT = "image_timeout"
    """The image path (CLIP text embedding plus image-vector search) ran past its budget."""
    IMAGE_ERROR = "image_error"
    """The image path failed (its model, its embeddings server, or its vector shard)."""
    IMAGE_NOT_CONFIGURED = "image_not_configured"
    """The image path was asked for but no image embedder is configured (SIEVE_IMAGE_EMBEDDER_MODEL_PATH or _BASE_URL)."""
    RERANK_TIMEOUT = "rerank_timeout"
    """The reranker ran past its budget; hits keep the fused order with cosine relevance."""
    RERANK_ERROR = "rerank_error"
    """The reranker failed or could not be built; hits keep the fused order with cosine relevance."""
    RETRIEVAL_ERROR = "retrieval_error"
    """Retrieval as a whole failed (or none is configured); the question is refused as unavailable."""
    NARROW_ERROR = "narrow_error"
    """Metadata narrowing (NL2SQL) failed; the whole knowledge base was searched."""
    WEB_ERROR = "web_error"
    """The web search engine failed; the web question is refused."""
    GRADE_UNSCORED = "grade_unscored"
    """Passages could not be scored for relevance; the evidence test alone graded them."""

    @property
    def is_timeout(self) -> bool:
        """Something ran out of time (retrying it would run out again)."""
        return self in _TIMEOUTS

    @classmethod
    def timeout_of(cls, stage: str) -> Degraded:
        """The flag of a retrieval stage (`bm25`, `dense`, `graph`, `image`, `rerank`) that ran past its budget."""
        return _STAGES[stage][0]

    @classmethod
    def error_of(cls, stage: str) -> Degraded:
        """The flag of a retrieval stage (`bm25`, `dense`, `graph`, `image`, `rerank`) whose backend failed."""
        return _STAGES[stage][1]


_TIMEOUTS = frozenset({
    Degraded.LLM_TIMEOUT, Degraded.EMBEDDER_TIMEOUT, Degraded.BM25_TIMEOUT, Degraded.DENSE_TIMEOUT,
    Degraded.GRAPH_TIMEOUT, Degraded.RERANK_TIMEOUT, Degraded.IMAGE_TIMEOUT,
})
_STAGES = {
    "bm25": (Degraded.BM25_TIMEOUT, Degraded.BM25_ERROR),
    "dense": (Degraded.DENSE_TIMEOUT, Degraded.DENSE_ERROR),
    "graph": (Degraded.GRAPH_TIMEOUT, Degraded.GRAPH_ERROR),
    "image": (Degraded.IMAGE_TIMEOUT, Degraded.IMAGE_ERROR),
    "rerank": (Degraded.RERANK_TIMEOUT, Degraded.RERANK_ERROR),
}


def any_timeout(flags: Iterable[str]) -> bool:
    """Whether any of `flags` (values as stored in state or results) says something ran out of time."""
    return any(Degraded(flag).is_timeout for flag in flags)
