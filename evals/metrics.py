"""Ranking metrics over document ids (BEIR conventions: graded relevance, binary for hits/recall)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def hit_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    return float(any(relevant.get(d, 0) > 0 for d in ranked[:k]))


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k], start=1):
        if relevant.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def dedupe(doc_ids: Sequence[str]) -> list[str]:
    """Chunk hits to a document ranking: each document at the rank of its best chunk."""
    return list(dict.fromkeys(doc_ids))
