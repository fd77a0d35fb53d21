"""Fusing the ranked lists of several recall paths into one ranking."""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sieve.stores.types import ScoredChunk


class FusionMode(StrEnum):
    """RRF needs no score calibration; weighted fusion normalises each path's scores first (`FusionNorm`)."""

    RRF = "rrf"
    WEIGHTED = "weighted"


class FusionNorm(StrEnum):
    """How weighted fusion puts each path's scores on one scale, per query: min-max (the path's best and
    worst candidates set the scale) or z-scores (its standard deviation does, so a score counts by how far
    it stands out from all the path's candidates)."""

    MINMAX = "minmax"
    ZSCORE = "zscore"


def _normalised(scores: Sequence[float], norm: FusionNorm) -> list[float]:
    """Each score on the path's common scale, shifted so that a chunk the path did not return counts 0
    (a z-score of 0 would rank it above the path's weaker hits) and the path's lowest hit one average
    gap above that: a returned hit still counts, which matters for short lists (the graph path's
    second hop would otherwise weigh nothing)."""
    if len(scores) < 2:
        return [1.0] * len(scores)  # a single hit gets full weight
    hi = max(scores)
    floor = min(scores) - (hi - min(scores)) / len(scores)
    spread = hi - floor if norm is FusionNorm.MINMAX else statistics.pstdev(scores)
    return [(s - floor) / spread if spread > 0 else 1.0 for s in scores]


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
    norm: FusionNorm = FusionNorm.MINMAX,
    unseen: Mapping[str, Collection[str]] | None = None,
) -> list[FusedChunk]:
    """Combine per-path results (each best first) into one list, best first.

    Paths missing from `weights` weigh 1.0. Ties keep the order of first appearance, so the
    result is deterministic for equal inputs. `unseen` names, per path, chunks that path could not
    have returned (BM25 and a passage in another script than the query): such a chunk gets that
    path's weight times its best share from the paths that did return it, instead of nothing.
    """
    weights = weights or {}
    unseen = unseen or {}
    fused: dict[str, FusedChunk] = {}
    shares: dict[str, float] = {}  # chunk id -> its best unweighted share from one path
    for path, hits in results.items():
        weight = weights.get(path, 1.0)
        if mode is FusionMode.WEIGHTED:
            scaled = _normalised([h.score for h in hits], norm)
        for rank, hit in enumerate(hits, start=1):
            entry = fused.setdefault(hit.chunk_id, FusedChunk(hit.chunk_id, hit.doc_id, 0.0))
            entry.ranks[path] = rank
            entry.path_scores[path] = hit.score
            share = 1 / (rrf_k + rank) if mode is FusionMode.RRF else scaled[rank - 1]
            entry.score += weight * share
            shares[hit.chunk_id] = max(share, shares.get(hit.chunk_id, 0.0))
    for path, blind in unseen.items():
        if path not in results:
            continue
        weight = weights.get(path, 1.0)
        for chunk_id in blind:
            seen = fused.get(chunk_id)
            if seen is not None and path not in seen.ranks:
                seen.score += weight * shares[chunk_id]
    return sorted(fused.values(), key=lambda f: f.score, reverse=True)
