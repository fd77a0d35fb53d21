"""`sieve eval retrieval`: each path alone, fused and reranked, on a BEIR split, with latency percentiles."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tqdm import tqdm

from sieve.evals.beir import BeirSplit
from sieve.evals.metrics import dedupe, hit_at, mrr_at, ndcg_at, percentile, recall_at
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.rerank import RerankerKind
from sieve.stores.types import SearchFilter

HIT_KS = (1, 3, 5, 10)


@dataclass
class RunReport:
    """Metrics of one retrieval configuration (a path alone, or the fusion) over a split."""

    name: str
    queries: int
    metrics: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    degraded: int = 0


def configurations(
    paths: list[str], base: RetrievalProfile, reranker: RerankerKind = RerankerKind.NONE
) -> dict[str, RetrievalProfile]:
    """Each path alone, then all of them fused (when there is more than one), then reranked (when asked)."""
    runs = {p: base.merged(paths=[p], reranker=RerankerKind.NONE) for p in paths}
    if len(paths) > 1:
        runs["fused"] = base.merged(paths=paths, reranker=RerankerKind.NONE)
    if reranker is not RerankerKind.NONE:
        runs[f"{'fused' if len(paths) > 1 else paths[0]}+{reranker.value}"] = base.merged(paths=paths, reranker=reranker)
    return runs


async def evaluate_retrieval(
    retriever: HybridRetriever,
    flt: SearchFilter,
    split: BeirSplit,
    runs: dict[str, RetrievalProfile],
    progress: bool = False,
) -> list[RunReport]:
    reports = []
    for name, profile in runs.items():
        profile = profile.merged(top_k=100, path_top_k=max(profile.path_top_k, 100))
        report = RunReport(name, len(split.queries))
        sums: dict[str, float] = {}
        latencies: list[float] = []
        for qid, text in tqdm(split.queries.items(), desc=name, disable=not progress, unit="q"):
            t0 = time.perf_counter()
            result = await retriever.retrieve(text, flt, profile=profile)
            latencies.append((time.perf_counter() - t0) * 1000)
            report.degraded += bool(result.degraded)
            ranked = dedupe([h.filename for h in result.hits])
            rel = split.qrels[qid]
            scores = {f"hit@{k}": hit_at(ranked, rel, k) for k in HIT_KS}
            scores |= {
                "mrr@10": mrr_at(ranked, rel, 10),
                "ndcg@10": ndcg_at(ranked, rel, 10),
                "recall@100": recall_at(ranked, rel, 100),
            }
            for key, value in scores.items():
                sums[key] = sums.get(key, 0.0) + value
        n = max(1, len(split.queries))
        report.metrics = {key: round(v / n, 4) for key, v in sums.items()}
        report.latency_ms = {"p50": round(percentile(latencies, 50), 2), "p95": round(percentile(latencies, 95), 2)}
        reports.append(report)
    return reports
