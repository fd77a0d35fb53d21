"""What a retrieval returns to the graph, the CLI and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sieve.degraded import Degraded
from sieve.stores.types import SearchFilter


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
