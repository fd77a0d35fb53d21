"""`sieve eval tune`: the fusion settings of one knowledge base, chosen on its labelled queries.

Each recall path runs once per query (its top `path_top_k` with raw scores); every candidate fusion
(RRF at several `rrf_k`, weighted with min-max or z-score normalisation, path weights on a grid) is
then replayed on those lists, so the search costs one retrieval per path and query. The choice is
checked by k-fold cross-validation: for each fold, the best setting on the other folds is scored on
the fold, so the "tuned" figure is one the tuning never saw. The stored winner is the best setting on
all queries.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from sieve.evals.beir import BeirSplit
from sieve.evals.metrics import dedupe, ndcg_at
from sieve.retrievers.crosslingual import language_aligned, topical_unseen
from sieve.retrievers.fusion import FusionMode, FusionNorm, fuse
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.rerank import RerankerKind
from sieve.stores.types import ScoredChunk, SearchFilter

# weight of each path after the first (which stays 1): ratios from "mostly the first" to "mostly this one"
WEIGHT_GRID = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
RRF_K_GRID = (5, 10, 20, 40, 60, 100)
METRIC = "ndcg@10"


@dataclass(frozen=True)
class FusionSetting:
    """The profile fields fusion reads."""

    fusion: FusionMode
    fusion_norm: FusionNorm
    weights: tuple[tuple[str, float], ...]
    rrf_k: int

    @classmethod
    def of(cls, profile: RetrievalProfile, paths: Sequence[str]) -> FusionSetting:
        return cls(profile.fusion, profile.fusion_norm, tuple((p, profile.weights.get(p, 1.0)) for p in paths),
                   profile.rrf_k)

    def label(self) -> str:
        weights = " ".join(f"{p}={w:g}" for p, w in self.weights)
        if self.fusion is FusionMode.RRF:
            return f"rrf k={self.rrf_k} {weights}"
        return f"weighted {self.fusion_norm.value} {weights}"

    def profile_fields(self) -> dict:
        return {"fusion": self.fusion, "fusion_norm": self.fusion_norm, "weights": dict(self.weights),
                "rrf_k": self.rrf_k}


@dataclass
class PathRuns:
    """Each path's ranked chunks per query, and the document (BEIR corpus id = filename) of each chunk."""

    paths: list[str]
    ranked: dict[str, dict[str, list[ScoredChunk]]]  # query id -> path -> chunks best first
    filename: dict[str, str]  # chunk id -> filename
    unseen: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # query id -> what fusion is told per path
    degraded: int = 0  # queries where a path reported degradation (their lists may be short)


@dataclass
class TuneRow:
    name: str
    setting: str
    ndcg: float  # mean over all queries
    # what to expect on unseen queries: the mean for fixed settings, the cross-validated mean for the tuned
    # one; None for the runners-up (chosen on these same queries)
    heldout_ndcg: float | None


@dataclass
class TuneReport:
    queries: int
    folds: int
    rows: list[TuneRow] = field(default_factory=list)
    winner: dict = field(default_factory=dict)  # the profile fields stored
    winner_label: str = ""
    fold_choices: list[str] = field(default_factory=list)


async def collect_runs(retriever: HybridRetriever, flt: SearchFilter, split: BeirSplit, paths: Sequence[str],
                       base: RetrievalProfile, progress: bool = False) -> PathRuns:
    """One retrieval per path and query, without time budgets (quality, not speed)."""
    runs = PathRuns(list(paths), {q: {} for q in split.queries}, {})
    for path in paths:
        top_k = min(base.path_top_k, RetrievalProfile.model_fields["top_k"].metadata[-1].le)  # hits returned at most
        profile = base.unbounded().merged(paths=[path], reranker=RerankerKind.NONE, top_k=top_k)
        for qid, text in tqdm(split.queries.items(), desc=path, disable=not progress, unit="q"):
            result = await retriever.retrieve(text, flt, profile=profile)
            runs.degraded += bool(result.degraded)
            runs.ranked[qid][path] = [ScoredChunk(h.chunk_id, h.doc_id, h.path_scores[path]) for h in result.hits]
            runs.filename.update((h.chunk_id, h.filename) for h in result.hits)
            if path == "dense":  # as retrieval fuses them: scores aligned across scripts, BM25 blind to the other
                other = retriever.other_script_chunks(text, [h.chunk_id for h in result.hits])
                runs.ranked[qid][path] = language_aligned(runs.ranked[qid][path], other)
                runs.unseen[qid] = {"bm25": other}
    if "bm25" in paths and "dense" in paths:  # the stand-in only where dense finds the passage on topic
        for qid, lists in runs.ranked.items():
            matched = [c.chunk_id for c in lists["bm25"]]
            runs.unseen[qid] = {"bm25": topical_unseen(lists["dense"], runs.unseen[qid]["bm25"], matched)}
    return runs


def candidate_settings(paths: Sequence[str]) -> list[FusionSetting]:
    """Every setting searched: the first path weighs 1, each other path a ratio of it."""
    grids = [[(paths[0], 1.0)]] + [[(p, w) for w in WEIGHT_GRID] for p in paths[1:]]
    settings = []
    for weights in itertools.product(*grids):
        settings += [FusionSetting(FusionMode.RRF, FusionNorm.MINMAX, weights, k) for k in RRF_K_GRID]
        settings += [FusionSetting(FusionMode.WEIGHTED, norm, weights, 60) for norm in FusionNorm]
    return settings


def per_query_scores(runs: PathRuns, split: BeirSplit, setting: FusionSetting) -> dict[str, float]:
    weights = dict(setting.weights)
    scores = {}
    for qid, lists in runs.ranked.items():
        fused = fuse({p: lists[p] for p in runs.paths if weights.get(p, 0) > 0}, setting.fusion, weights,
                     setting.rrf_k, setting.fusion_norm, runs.unseen.get(qid))
        scores[qid] = ndcg_at(dedupe([runs.filename[f.chunk_id] for f in fused]), split.qrels[qid], 10)
    return scores


def path_scores(runs: PathRuns, split: BeirSplit, path: str) -> dict[str, float]:
    return {qid: ndcg_at(dedupe([runs.filename[c.chunk_id] for c in lists[path]]), split.qrels[qid], 10)
            for qid, lists in runs.ranked.items()}


def fold_of(query_id: str, folds: int) -> int:
    """A stable fold per query (a hash of its id), the same on every run."""
    return int(hashlib.sha1(query_id.encode()).hexdigest(), 16) % folds


def _mean(scores: dict[str, float], qids: Sequence[str]) -> float:
    return sum(scores[q] for q in qids) / max(1, len(qids))


def tune(runs: PathRuns, split: BeirSplit, current: FusionSetting, folds: int = 5) -> TuneReport:
    """Each path alone, the current setting, the cross-validated tuning and the best settings overall."""
    qids = list(runs.ranked)
    # the current setting first: on a tie it stays (sorting and max keep the first of equals)
    settings = [current] + [s for s in candidate_settings(runs.paths) if s != current]
    table = {s: per_query_scores(runs, split, s) for s in settings}
    report = TuneReport(len(qids), folds)
    for path in runs.paths:
        alone = _mean(path_scores(runs, split, path), qids)
        report.rows.append(TuneRow(path, "alone", round(alone, 4), round(alone, 4)))
    now = _mean(table[current], qids)
    report.rows.append(TuneRow("current", current.label(), round(now, 4), round(now, 4)))

    # the best setting on the other folds, scored on each fold: an estimate the tuning never saw
    heldout_total = 0.0
    for fold in range(folds):
        inside = [q for q in qids if fold_of(q, folds) != fold]
        outside = [q for q in qids if fold_of(q, folds) == fold]
        if not outside:
            continue
        chosen = max(settings, key=lambda s: _mean(table[s], inside))
        report.fold_choices.append(chosen.label())
        heldout_total += sum(table[chosen][q] for q in outside)
    ranked = sorted(settings, key=lambda s: _mean(table[s], qids), reverse=True)
    report.rows.append(TuneRow("tuned", ranked[0].label(), round(_mean(table[ranked[0]], qids), 4),
                               round(heldout_total / max(1, len(qids)), 4)))
    for i, setting in enumerate(ranked[1:5], start=2):
        report.rows.append(TuneRow(f"#{i}", setting.label(), round(_mean(table[setting], qids), 4), None))
    report.winner, report.winner_label = ranked[0].profile_fields(), ranked[0].label()
    return report
