"""`sieve eval refusal` / `sieve eval calibrate`: answer-or-refuse accuracy of the grade node's decision.

Rows (`answer_or_refuse.jsonl`) hold a question, the passages retrieval would have found, and whether
they answer it. The decision is the grade node's (`graphs/shared/grading.py`): answer when some passage is
kept. Relevance comes from one reranker provider, so the relevance threshold is fitted for that
provider's scale on the calibration half and reported on the held-out half. The split is by a hash
of the question id (both variants of a question on the same side); the evidence model was trained
on calibration halves only, so held-out figures are on rows no fitting has seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sieve.evals.jsonl import read_rows
from sieve.graphs.shared.evidence_model import evidence_model
from sieve.graphs.shared.grading import Evidence, WordVectors, gather_evidence, language_of, with_synonyms
from sieve.graphs.shared.state import Passage
from sieve.prompts.language import Lang, detect

Relevance = Callable[[str, list[str]], list[float]]
"""`(query, passages) -> relevance per passage`, e.g. a reranker's `score`."""

@dataclass(frozen=True)
class Row:
    id: str
    query: str
    docs: list[str]
    answerable: bool
    titles: list[str] = field(default_factory=list)  # each passage's document title, where the file has them

    @property
    def question_id(self) -> str:
        return self.id.rsplit("-", 1)[0]


def load_rows(path: Path, limit: int | None = None) -> list[Row]:
    """Rows of a labelled file; `limit` keeps the first N questions with both their variants."""
    rows = read_rows(path, lambda r: Row(str(r["id"]), r["query"], list(r["docs"]), bool(r["answerable"]),
                                         list(r.get("titles", []))), "a row with id, query, docs and answerable")
    if limit:
        keep = set(sorted({r.question_id for r in rows})[:limit])
        rows = [r for r in rows if r.question_id in keep]
    return rows


def row_passage(row: Row, index: int, relevance: float) -> Passage:
    passage = Passage(chunk_id=f"{row.id}#{index}", doc_id=f"{row.id}#{index}", filename="", text=row.docs[index],
                      score=0.0, relevance=float(relevance), path_scores={})
    if row.titles:
        passage["title"] = row.titles[index]
    return passage


def held_out(row: Row) -> bool:
    """Never used for fitting: questions whose id hashes odd."""
    return int(hashlib.sha1(row.question_id.encode()).hexdigest(), 16) % 2 == 1


def calibration_half(row: Row) -> bool:
    return not held_out(row)


@dataclass(frozen=True)
class RowEvidence:
    lang: Lang
    passages: list[Evidence]
    passage_langs: list[Lang]  # each passage's own language, whose threshold it must reach (as in grading)


def gather(rows: Sequence[Row], relevance: Relevance, lang: Lang | None = None,
           vectors: WordVectors | None = None) -> list[RowEvidence]:
    """What each row's passages offer the grade node, with relevance from the given provider."""
    gathered = []
    for row in rows:
        scores = relevance(row.query, row.docs)
        passages = [row_passage(row, i, s) for i, s in enumerate(scores)]
        row_lang = lang or detect(row.query)
        evidence = gather_evidence(row.query, passages, row_lang)
        if vectors is not None:
            evidence = with_synonyms(evidence, row_lang, vectors)
        gathered.append(RowEvidence(row_lang, evidence, [language_of(p["text"]) for p in passages]))
    return gathered


def decisions(evidence: Sequence[RowEvidence], min_relevance: float, relevance_only: bool = False) -> list[bool]:
    """Answer (True) or refuse, per row: some passage relevant enough that the evidence model keeps."""
    model = evidence_model()
    decided = []
    for row in evidence:
        relevant = [e.relevance >= min_relevance for e in row.passages]
        if relevance_only or not any(relevant):
            decided.append(any(relevant))
            continue
        probabilities = model.probabilities(row.passages, row.lang, min_relevance)
        decided.append(any(ok and p >= model.threshold(lang)
                           for ok, p, lang in zip(relevant, probabilities, row.passage_langs)))
    return decided


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


def threshold_grid(evidence: Sequence[RowEvidence], points: int = 40) -> list[float]:
    """Candidate thresholds on the provider's own scale: quantiles of the rows' best relevance."""
    best = np.array([max((e.relevance for e in row.passages), default=0.0) for row in evidence])
    return sorted({round(float(q), 4) for q in np.quantile(best, np.linspace(0, 1, points))})


def fit(evidence: Sequence[RowEvidence], truth: Sequence[bool], relevance_only: bool = False) -> tuple[float, float]:
    """The relevance threshold with the best accuracy, by the one-standard-error rule.

    Of the thresholds within one SE of the best, the most permissive: a single best point on a
    hundred-odd questions is mostly noise. The evidence model takes relevance relative to this
    threshold, so it also moves the model onto the provider's scale.
    """
    scored = [(Scores.of(decisions(evidence, t, relevance_only), truth).accuracy, t) for t in threshold_grid(evidence)]
    best = max(score for score, _ in scored)
    band = best - (best * (1 - best) / max(1, len(truth))) ** 0.5
    score, threshold = min(((s, t) for s, t in scored if s >= band), key=lambda pair: pair[1])
    return threshold, score


@dataclass
class RefusalReport:
    """One decision rule fitted on the calibration half and scored on the held-out half."""

    name: str
    limits: dict[str, float]
    calibration: Scores
    test: Scores


def _halves(rows: Sequence[Row]) -> tuple[list[int], list[int]]:
    return [i for i, r in enumerate(rows) if calibration_half(r)], [i for i, r in enumerate(rows) if held_out(r)]


def _report(name: str, rows: Sequence[Row], evidence: Sequence[RowEvidence], threshold: float,
            relevance_only: bool = False) -> RefusalReport:
    cal, test = _halves(rows)

    def part(idx: list[int]) -> Scores:
        return Scores.of(decisions([evidence[i] for i in idx], threshold, relevance_only), [rows[i].answerable for i in idx])

    return RefusalReport(name, {"min_relevance": threshold}, part(cal), part(test))


def evaluate_refusal(rows: Sequence[Row], evidence: Sequence[RowEvidence], fixed: float | None = None) -> list[RefusalReport]:
    """Relevance alone and relevance + evidence model (thresholds fitted), and the `fixed` relevance
    threshold when given (e.g. the shipped one)."""
    cal, _ = _halves(rows)
    truth = [rows[i].answerable for i in cal]
    reports = []
    for name, relevance_only in (("relevance only", True), ("relevance + evidence model", False)):
        threshold, _ = fit([evidence[i] for i in cal], truth, relevance_only)
        reports.append(_report(name, rows, evidence, threshold, relevance_only))
    if fixed is not None:
        reports.append(_report("evidence model, shipped threshold", rows, evidence, fixed))
    return reports


def calibrate_threshold(rows: Sequence[Row], evidence: Sequence[RowEvidence]) -> RefusalReport:
    """The relevance threshold for a knowledge base's provider, fitted on the calibration half."""
    cal, _ = _halves(rows)
    threshold, _ = fit([evidence[i] for i in cal], [rows[i].answerable for i in cal])
    return _report("calibrated threshold", rows, evidence, threshold)
