"""What a retrieval returns to the graph, the CLI and the API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sieve.degraded import Degraded
from sieve.stores.types import SearchFilter

if TYPE_CHECKING:
    import numpy as np

    from sieve.retrievers.profile import RetrievalProfile
    from sieve.stores.embedding_cache import EmbeddingCache


@dataclass
class Hit:
    """A fused, hydrated search result: one chunk with its document's identity and per-path ranks."""

    chunk_id: str
    doc_id: str
    text: str
    score: float
    filename: str = ""
    title: str = ""
    source_uri: str = ""
    ordinal: int = 0
    location: dict[str, Any] | None = None  # page and boxes it was read from (scans, images); see Chunk.meta
    ranks: dict[str, int] = field(default_factory=dict)  # path name -> 1-based rank in that path
    path_scores: dict[str, float] = field(default_factory=dict)  # path name -> that path's raw score
    relevance: float | None = None  # calibrated query-passage relevance (reranker or embedding cosine)


@dataclass
class RetrievalResult:
    """Hits best first, plus what degraded (e.g. `dense_timeout`) and how long each stage took.

    `relevance_threshold` is the profile's calibrated threshold for the scale the hits' `relevance`
    is on; None when there is none (or the reranker it was calibrated for degraded): callers then
    apply their own cosine default.
    """

    hits: list[Hit]
    degraded: list[Degraded] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    relevance_threshold: float | None = None


class Retriever(Protocol):
    """What the query graph calls: hybrid retrieval over one knowledge base under a filter."""

    async def retrieve(self, query: str, flt: SearchFilter, k: int) -> RetrievalResult: ...


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` reading), as stage timings report them."""
    return round((time.perf_counter() - start) * 1000, 3)


@dataclass
class QueryRun:
    """One retrieval under way: what it searches, its deadline, and what it has to report so far.

    Each component takes its stage's budget from it (never past what is left of the profile's
    `total_budget_ms`) and adds its degradation flags and stage times to it.
    """

    query: str
    flt: SearchFilter
    profile: RetrievalProfile
    degraded: list[Degraded] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    query_vector: np.ndarray | None = None  # the dense path's query embedding, reused for relevance
    # the passage vectors of the query embedding's space (a fine-tuned embedder's own), for relevance
    vector_cache: EmbeddingCache | None = None
    # flags a recall path reports only if it answers (the graph path found no graph to search)
    on_answer: dict[str, list[Degraded]] = field(default_factory=dict)

    @property
    def deadline(self) -> float:
        return self.started + self.profile.total_budget_ms / 1000

    def budget(self, stage_ms: int) -> float:
        """Seconds a stage with a `stage_ms` budget may take now."""
        return max(0.0, min(stage_ms / 1000, self.deadline - time.perf_counter()))
