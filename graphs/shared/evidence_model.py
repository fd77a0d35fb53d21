"""The learned evidence model of deterministic grading: does this passage state the answer?

Small gradient-boosted trees over a handful of features of a passage (`FEATURES`), trained by
`evals/train_evidence.py` on answer-or-refuse development data and shipped as JSON
(`evidence_model.json`: coefficients, per-language thresholds, the training report). Runtime needs
nothing beyond the standard library. Where no embedder answers (or one of another space than the
shipped `word_mean`), paraphrases and fit go uncounted and the model refuses more: the safe side.

A refusal names the deciding evidence: the feature of the most promising passage whose
replacement by what answering passages typically show (`reference`, their training means) would
raise its probability most, said in words ("no sentence mentions 'CEO'").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sieve.prompts.language import Lang

MODEL_PATH = Path(__file__).with_name("evidence_model.json")
FIT_UNSEEN = -1.0  # fit of a sentence whose candidates were not compared with the question (no vectors, Chinese)
FEATURES = (
    "relevance",  # passage relevance above the knowledge base's relevance threshold
    "coverage",  # best weighted key-term coverage of a sentence (title and opening sentence as context)
    "typed_coverage",  # the same, over sentences that state something of the asked-for kind
    "typed",  # some sentence states something of the asked-for kind
    "open",  # the question asks for no particular kind ("what does X do")
    "numbers",  # every number of the question occurs in the passage
    "corroborated",  # an answer it states is stated by another source too
    "anchored",  # a sentence of the asked-for kind names every subject of the question
    "anchored_predicate",  # best coverage of the rest of the question by such a sentence
    "zh",  # the question is Chinese
    "zh_coverage",  # Chinese and English state things differently: coverage per language
    "zh_typed_coverage",
    "anchored_paraphrased",  # share of the rest it repeats or paraphrases
    "fit",  # English: how well the candidates of its best such sentence fit what is asked ("grams" for "weigh")
    "fit_margin",  # English: that fit against the best-fitting such sentence elsewhere among the passages
)


def complete(e: Any) -> float:
    """1 when one sentence states the whole answer: something of the asked-for kind (a particular
    kind, not an open question), every subject and every other word of the question (or a
    paraphrase), and the question's numbers. The model learns from relevance how often a passage
    like this answers; a cross-language passage (a Chinese question over an English document)
    scores lower relevance without answering any less."""
    return float(not e.open_question and e.has_numbers and any(
        s.candidates and s.anchored and s.paraphrased == 1.0 for s in e.sentences))


def _fit(evidence: list[Any], index: int, lang: Lang) -> tuple[float, float]:
    """Best fit of a sentence of passage `index` that names the subjects and states something of the
    asked-for kind, and its margin over the best other such sentence of any passage (0 in Chinese,
    where fit is not measured)."""
    if lang == "zh":
        return 0.0, 0.0
    stating = [(s.fit, i, j) for i, e in enumerate(evidence) for j, s in enumerate(e.sentences) if s.typed and s.anchored]
    own = [t for t in stating if t[1] == index]
    if not own:
        return FIT_UNSEEN, FIT_UNSEEN
    best = max(own)
    others = [t[0] for t in stating if t[1:] != best[1:]]
    return best[0], best[0] - max(others) if others else 0.5  # alone in stating it: a clear margin


def features(evidence: list[Any], index: int, lang: Lang, min_relevance: float) -> dict[str, float]:
    """The feature values of passage `index` among the retrieved `evidence` (`grading.Evidence`)."""
    e = evidence[index]
    fit, fit_margin = _fit(evidence, index, lang)
    coverage = max((s.coverage for s in e.sentences), default=0.0)
    typed_coverage = max((s.coverage for s in e.sentences if s.typed), default=0.0)
    zh = float(lang == "zh")
    values = {
        "relevance": e.relevance - min_relevance,
        "coverage": coverage,
        "typed_coverage": typed_coverage,
        "typed": float(any(s.typed for s in e.sentences)),
        "open": float(e.open_question),
        "numbers": float(e.has_numbers),
        "corroborated": float(e.corroborated),
        "anchored": float(any(s.typed and s.anchored for s in e.sentences)),
        "anchored_predicate": max((s.predicate for s in e.sentences if s.typed and s.anchored), default=0.0),
        # paraphrases count only where `grading.with_synonyms` looked (English, with an embedder)
        "anchored_paraphrased": max((s.paraphrased for s in e.sentences if s.typed and s.anchored), default=0.0),
        "zh": zh,
        "zh_coverage": zh * coverage,
        "zh_typed_coverage": zh * typed_coverage,
        "fit": fit,
        "fit_margin": fit_margin,
    }
    return values


@dataclass(frozen=True)
class Tree:
    """One regression tree of the boosted ensemble, as parallel node arrays (sklearn's layout)."""

    left: tuple[int, ...]  # -1 at a leaf
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    value: tuple[float, ...]

    def predict(self, x: list[float]) -> float:
        node = 0
        while self.left[node] != -1:
            node = self.left[node] if x[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


@dataclass(frozen=True)
class EvidenceModel:
    """Log-odds = init + rate * (sum of the boosted trees) + weights . features: gradient-boosted
    trees (no weights) or a logistic regression (no trees), whichever training chose."""

    version: str
    features: tuple[str, ...]
    init: float
    rate: float
    trees: tuple[Tree, ...]
    thresholds: dict[str, float]  # per language: the probability a passage must reach to answer
    reference: dict[str, float]  # mean feature values of answering passages in training
    weights: tuple[float, ...] = ()
    word_mean: tuple[float, ...] = ()  # the embedder's mean English word vector (`grading.with_synonyms`)

    def probability(self, values: dict[str, float]) -> float:
        x = [values[f] for f in self.features]
        z = self.init + self.rate * sum(tree.predict(x) for tree in self.trees) + sum(w * v for w, v in zip(self.weights, x))
        return 1.0 / (1.0 + math.exp(-z))

    def probabilities(self, evidence: list[Any], lang: Lang, min_relevance: float) -> list[float]:
        return [max(self.probability(features(evidence, i, lang, min_relevance)), complete(evidence[i]))
                for i in range(len(evidence))]

    def threshold(self, lang: Lang) -> float:
        return self.thresholds[lang]

    def deciding_feature(self, evidence: list[Any], index: int, lang: Lang, min_relevance: float) -> str:
        """The feature whose typical answering value would raise passage `index`'s probability most."""
        values = features(evidence, index, lang, min_relevance)
        gain = {f: self.probability({**values, f: self.reference[f]}) for f in self.features if f in EXPLAINED}
        return max(gain, key=gain.__getitem__)

    def explain(self, evidence: list[Any], index: int, question: str, lang: Lang, min_relevance: float) -> str:
        """Why passage `index` (the most promising) does not answer, in the question's language."""
        from sieve.graphs.shared.grading import answer_kind  # grading imports this module

        feature = self.deciding_feature(evidence, index, lang, min_relevance)
        e = evidence[index]
        best = max(e.sentences, key=lambda s: (s.anchored, s.coverage)) if e.sentences else None
        kind = answer_kind(question, lang)
        separator = "、" if lang == "zh" else ", "
        if best is not None and not best.anchored and best.missing:  # the subject itself is missing
            feature = "anchored"
        if feature in _TERMS and best is not None and (best.missing or best.unmatched):
            named = best.missing if feature != "anchored_paraphrased" else best.unmatched
            missing = separator.join(f"“{t}”" if lang == "zh" else f"'{t}'" for t in (named or best.missing)[:3])
            return _TEXT["missing"][lang].format(missing=missing)
        if feature in ("typed", "typed_coverage", "zh_typed_coverage", "anchored", "fit", "fit_margin") and kind != "other":
            return _TEXT["kind"][lang].format(kind=_KIND_NAMES[kind][lang])
        if feature == "numbers":
            return _TEXT["numbers"][lang]
        if feature in ("relevance", "relevance_gap", "corroborated"):
            return _TEXT["relevance"][lang].format(relevance=e.relevance)
        return _TEXT["statement"][lang]


_TERMS = {"coverage", "zh_coverage", "anchored_predicate", "anchored_paraphrased", "anchored"}
EXPLAINED = set(FEATURES) - {"open", "zh"}
_KIND_NAMES = {
    "number": {"zh": "数字", "en": "number"}, "date": {"zh": "时间", "en": "date"},
    "person": {"zh": "人物", "en": "person"}, "place": {"zh": "地点", "en": "place"},
    "name": {"zh": "名称", "en": "name"}, "work": {"zh": "作品", "en": "title"}, "value": {"zh": "数值或名称", "en": "value"},
}
_TEXT = {
    "missing": {"zh": "最接近的段落没有一句提到{missing}。", "en": "no sentence of the closest passage mentions {missing}."},
    "kind": {"zh": "没有一句话给出所问的{kind}。", "en": "no sentence states the {kind} that was asked for."},
    "numbers": {"zh": "段落没有提到问题中的年份或数字。",
                "en": "the passages do not mention the year or number in the question."},
    "relevance": {"zh": "相关的段落都只是沾边（最高相关度 {relevance:.2f}），没有一句直接回答。",
                  "en": "the related passages only touch on it (best relevance {relevance:.2f}); none answers it directly."},
    "statement": {"zh": "没有一句话直接回答它。", "en": "no sentence answers it directly."},
}


def load(path: Path) -> EvidenceModel:
    data = json.loads(path.read_text(encoding="utf-8"))

    trees = tuple(Tree(*(tuple(t[k]) for k in ("left", "right", "feature", "threshold", "value"))) for t in data["trees"])
    return EvidenceModel(data["version"], tuple(data["features"]), data["init"], data["rate"], trees,
                         data["thresholds"], data["reference"], tuple(data.get("weights", ())),
                         tuple(data.get("word_mean", ())))


@lru_cache(maxsize=1)
def evidence_model() -> EvidenceModel:
    return load(MODEL_PATH)
