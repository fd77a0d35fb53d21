"""Fusing the ranked lists of several recall paths into one ranking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from sieve.stores.types import ScoredChunk


class FusionMode(str, Enum):
    """RRF needs no score calibration; weighted fusion min-max normalises each path's scores first."""

    RRF = "rrf"
    WEIGHTED = "weighted"


@dataclass
class FusedChunk:
    chunk_id: str
    doc_id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    path_scores: dict[str, float] = field(default_factory=dict)


def fuse(
    results: Mapping[str, Sequence[ScoredChunk]],
    mode: FusionMode = FusionMode.RRF,
    weights: Mapping[str, float] | None = None,
    rrf_k: int = 60,
) -> list[FusedChunk]:
    """Combine per-path results (each best first) into one list, best first.

    Paths missing from `weights` weigh 1.0. Ties keep the order of first appearance, so the
    result is deterministic for equal inputs.
    """
    weights = weights or {}
    fused: dict[str, FusedChunk] = {}
    for path, hits in results.items():
        weight = weights.get(path, 1.0)
        if mode is FusionMode.WEIGHTED and hits:
            scores = [h.score for h in hits]
            lo, hi = min(scores), max(scores)
            span = hi - lo
        for rank, hit in enumerate(hits, start=1):
            entry = fused.setdefault(hit.chunk_id, FusedChunk(hit.chunk_id, hit.doc_id, 0.0))
            entry.ranks[path] = rank
            entry.path_scores[path] = hit.score
            if mode is FusionMode.RRF:
                entry.score += weight / (rrf_k + rank)
            else:
                # a single-hit path (span 0) gives its hit full weight
                entry.score += weight * ((hit.score - lo) / span if span > 0 else 1.0)
    return sorted(fused.values(), key=lambda f: f.score, reverse=True)
