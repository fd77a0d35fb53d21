"""`sieve eval refusal` / `sieve eval calibrate`: answer-or-refuse accuracy of the grade node's decision.

Rows (`answer_or_refuse.jsonl`) hold a question, the passages retrieval would have found, and whether
they answer it. The decision is the grade node's (`graphs/grading.py`): answer when some passage is
kept. Relevance comes from one reranker provider, so the threshold is fitted for that provider's
scale: on the calibration half (split by a hash of the question id, both variants of a question
on the same side), reported on the other half.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sieve.graphs.grading import Evidence, GradeLimits, decide, gather_evidence
from sieve.graphs.state import Passage
from sieve.prompts.language import Lang, detect

Relevance = Callable[[str, list[str]], list[float]]
"""`(query, passages) -> relevance per passage`, e.g. a reranker's `score`."""

EVIDENCE_GRID = list(itertools.product([0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.8, 0.9, 1.0]))


@dataclass(frozen=True)
class Row:
    id: str
    query: str
    docs: list[str]
    answerable: bool

    @property
    def question_id(self) -> str:
        return self.id.rsplit("-", 1)[0]


def load_rows(path: Path, limit: int | None = None) -> list[Row]:
    """Rows of a labelled file; `limit` keeps the first N questions with both their variants."""
    rows = [Row(str(r["id"]), r["query"], list(r["docs"]), bool(r["answerable"]))
            for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if r]
    if limit:
        keep = set(sorted({r.question_id for r in rows})[:limit])
        rows = [r for r in rows if r.question_id in keep]
    return rows


def calibration_half(row: Row) -> bool:
    return int(hashlib.sha1(row.question_id.encode()).hexdigest(), 16) % 2 == 0


def gather(rows: Sequence[Row], relevance: Relevance, lang: Lang | None = None) -> list[list[Evidence]]:
    """What each row's passages offer the grade node, with relevance from the given provider."""
    evidence = []
    for row in rows:
        scores = relevance(row.query, row.docs)
        passages = [Passage(chunk_id=f"{row.id}#{i}", doc_id=f"{row.id}#{i}", filename="", text=text, score=0.0,
                            relevance=float(s), path_scores={}) for i, (text, s) in enumerate(zip(row.docs, scores))]
        evidence.append(gather_evidence(row.query, passages, lang or detect(row.query)))
    return evidence


def decisions(evidence: Sequence[list[Evidence]], limits: GradeLimits, relevance_only: bool = False) -> list[bool]:
    """Answer (True) or refuse, per row."""
    if relevance_only:
        return [max((e.relevance for e in ev), default=float("-inf")) >= limits.min_relevance for ev in evidence]
    return [bool(decide(ev, limits)) for ev in evidence]


@dataclass
class Scores:
    """Accuracy and the confusion matrix (truth x decision) of answer-or-refuse decisions."""

    rows: int
    accuracy: float
    confusion: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, decided: Sequence[bool], truth: Sequence[bool]) -> Scores:
        cells = {f"{'answerable' if t else 'unanswerable'}/{'answered' if d else 'refused'}": 0
                 for t in (True, False) for d in (True, False)}
        for d, t in zip(decided, truth):
            cells[f"{'answerable' if t else 'unanswerable'}/{'answered' if d else 'refused'}"] += 1
        accuracy = sum(d == t for d, t in zip(decided, truth)) / max(1, len(truth))
        return cls(len(truth), round(accuracy, 4), cells)


def threshold_grid(evidence: Sequence[list[Evidence]], points: int = 40) -> list[float]:
    """Candidate thresholds on the provider's own scale: quantiles of the rows' best relevance."""
    best = np.array([max((e.relevance for e in ev), default=0.0) for ev in evidence])
    return sorted({round(float(q), 4) for q in np.quantile(best, np.linspace(0, 1, points))})


def fit(
    evidence: Sequence[list[Evidence]],
    truth: Sequence[bool],
    evidence_grid: Sequence[tuple[float, float]] = EVIDENCE_GRID,
    relevance_only: bool = False,
) -> tuple[GradeLimits, float]:
    """The limits with the best accuracy, by the one-standard-error rule.

    Of the settings within one SE of the best, the most permissive relevance floor, then the
    strictest evidence: a single best point on a hundred-odd questions is mostly noise.
    """
    grid = [(1.0, 1.0)] if relevance_only else evidence_grid
    scored = []
    for threshold, (ev, strong) in itertools.product(threshold_grid(evidence), grid):
        limits = GradeLimits(threshold, ev, strong)
        scored.append((Scores.of(decisions(evidence, limits, relevance_only), truth).accuracy, limits))
    best = max(score for score, _ in scored)
    band = best - (best * (1 - best) / max(1, len(truth))) ** 0.5
    score, limits = min(((s, lim) for s, lim in scored if s >= band),
                        key=lambda pair: (pair[1].min_relevance, -pair[1].strong_evidence, -pair[1].evidence))
    return limits, score


@dataclass
class RefusalReport:
    """One decision rule fitted on the calibration half and scored on the test half."""

    name: str
    limits: dict[str, float]
    calibration: Scores
    test: Scores


def evaluate_refusal(
    rows: Sequence[Row],
    evidence: Sequence[list[Evidence]],
    fixed: GradeLimits | None = None,
) -> list[RefusalReport]:
    """Relevance alone, relevance + evidence (both fitted), and `fixed` limits when given (e.g. shipped ones)."""
    cal = [i for i, r in enumerate(rows) if calibration_half(r)]
    test = [i for i in range(len(rows)) if i not in set(cal)]
    truth = [r.answerable for r in rows]

    def part(idx: list[int], limits: GradeLimits, relevance_only: bool = False) -> Scores:
        return Scores.of(decisions([evidence[i] for i in idx], limits, relevance_only), [truth[i] for i in idx])

    reports = []
    for name, relevance_only in (("relevance only", True), ("relevance + evidence", False)):
        limits, _ = fit([evidence[i] for i in cal], [truth[i] for i in cal], relevance_only=relevance_only)
        reports.append(RefusalReport(name, limits.__dict__, part(cal, limits, relevance_only),
                                     part(test, limits, relevance_only)))
    if fixed is not None:
        reports.append(RefusalReport("fixed limits", fixed.__dict__, part(cal, fixed), part(test, fixed)))
    return reports


def calibrate_threshold(rows: Sequence[Row], evidence: Sequence[list[Evidence]], base: GradeLimits) -> RefusalReport:
    """The relevance threshold for the grade node's evidence constants `base`, fitted on the calibration half."""
    cal = [i for i, r in enumerate(rows) if calibration_half(r)]
    test = [i for i in range(len(rows)) if i not in set(cal)]
    truth = [r.answerable for r in rows]
    limits, _ = fit([evidence[i] for i in cal], [truth[i] for i in cal], [(base.evidence, base.strong_evidence)])

    def part(idx: list[int]) -> Scores:
        return Scores.of(decisions([evidence[i] for i in idx], limits), [truth[i] for i in idx])

    return RefusalReport("calibrated threshold", limits.__dict__, part(cal), part(test))
