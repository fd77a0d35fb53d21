"""Trains the evidence model of deterministic grading (`graphs/evidence_model.json`) and reports it.

    .venv/bin/python evals/train_evidence.py [--zh PATH] [--en PATH] [--cache DIR] [--write]

Data: rgb-zh answer_or_refuse (Chinese news) and evals/data/answer_or_refuse_en.jsonl (English
product, technical, policy and encyclopedic documents). Only the fitting part of each is used
(`sieve.evals.refusal.held_out` is false); the held-out part is scored once at the end, against
the hand-written rules the model replaced where the `--baseline` figures are given.

A passage is a positive example when its row is answerable and it contains one of the row's
answers. Relevance is the e5 query-passage cosine; synonym matching compares e5 word vectors
(`grading.with_synonyms`); all vectors are cached in
`--cache` (a file under /tmp by default), so refitting takes seconds. The per-language threshold
is the one with the best row accuracy on the fitting part (answer when some passage reaches it).
`--write` stores coefficients, thresholds and this report in the model file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from sieve.bench.bench_graph import VectorCache, build_embedder
from sieve.evals.refusal import Row, Scores, held_out, load_rows, row_passage
from sieve.graphs.context import Thresholds
from sieve.graphs.evidence_model import FEATURES, MODEL_PATH, complete, features
from sieve.graphs.grading import Evidence, gather_evidence, with_synonyms
from sieve.graphs.state import Passage

REPO = Path(__file__).resolve().parents[1]
ZH = REPO.parent / "shared" / "data" / "rgb-zh" / "answer_or_refuse.jsonl"
EN = REPO / "evals" / "data" / "answer_or_refuse_en.jsonl"
VERSION = "2"
# shallow trees and large leaves: deeper ones fit the ~2,000 training passages to 0.95 and do worse held out
TREES, RATE, DEPTH, LEAF = 100, 0.05, 2, 40


def answers_of(path: Path) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        flat[str(row["id"])] = [x for a in row["answers"] for x in (a if isinstance(a, list) else [a])]
    return flat


def evidence_of(rows: list[Row], lang: str, cache: VectorCache, embedder) -> list[tuple[list[Passage], list[Evidence]]]:
    """Each row's passages, most relevant first, with relevance and synonym matching from e5."""
    queries = dict(zip([r.query for r in rows], cache.get(embedder, "query", [r.query for r in rows])))
    texts = sorted({d for r in rows for d in r.docs})
    vectors = dict(zip(texts, cache.get(embedder, "passage", texts)))
    out = []
    for row in rows:
        passages = sorted((row_passage(row, i, float(vectors[text] @ queries[row.query])) for i, text in enumerate(row.docs)),
                          key=lambda p: -(p["relevance"] or 0.0))
        evidence = with_synonyms(gather_evidence(row.query, passages, lang), lang,
                                 lambda words: cache.get(embedder, "passage", words))
        out.append((passages, evidence))
    return out


def matrix(items, lang: str, min_relevance: float) -> list[np.ndarray]:
    return [np.array([[features(evidence, i, lang, min_relevance)[f] for f in FEATURES] for i in range(len(evidence))])
            for _, evidence in items]


def fit(x: list[np.ndarray], y: list[np.ndarray]) -> GradientBoostingClassifier:
    model = GradientBoostingClassifier(n_estimators=TREES, max_depth=DEPTH, learning_rate=RATE, subsample=0.8,
                                       min_samples_leaf=LEAF, random_state=0)
    return model.fit(np.vstack(x), np.concatenate(y))


def export_trees(model: GradientBoostingClassifier) -> dict:
    """The ensemble as plain arrays, evaluated by `graphs/evidence_model.py` without sklearn."""
    trees = []
    for estimator in model.estimators_[:, 0]:
        t = estimator.tree_
        trees.append({"left": t.children_left.tolist(), "right": t.children_right.tolist(),
                      "feature": [max(int(f), 0) for f in t.feature],
                      "threshold": [round(float(v), 6) for v in t.threshold],
                      "value": [round(float(v), 6) for v in t.value[:, 0, 0]]})
    init = float(model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0, 0])
    return {"init": round(init, 6), "rate": RATE, "trees": trees}


def row_decisions(model: GradientBoostingClassifier, x: list[np.ndarray], best: list[float], threshold: float,
                  min_relevance: float, whole: list[bool]) -> list[bool]:
    """Answer when the best passage is relevant enough and some passage reaches the threshold or
    states the whole answer (`evidence_model.complete`)."""
    return [b >= min_relevance and (w or bool((model.predict_proba(m)[:, 1] >= threshold).any()))
            for m, b, w in zip(x, best, whole)]


def best_threshold(model, x, best, truth, min_relevance, whole) -> float:
    """The threshold with the best fitting-part accuracy; the middle of the best run on a tie."""
    grid = np.round(np.linspace(0.05, 0.95, 91), 3)
    scores = [Scores.of(row_decisions(model, x, best, t, min_relevance, whole), truth).accuracy for t in grid]
    top = max(scores)
    winners = [t for t, s in zip(grid, scores) if s == top]
    return float(winners[len(winners) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zh", type=Path, default=ZH)
    parser.add_argument("--en", type=Path, default=EN)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sieve-evidence"))
    parser.add_argument("--write", action="store_true", help="store the model in graphs/evidence_model.json")
    args = parser.parse_args()

    name, embedder = build_embedder("auto")
    cache = VectorCache(args.cache / f"vectors-{name}.npz")
    thresholds = Thresholds()
    data = {}
    t0 = time.perf_counter()
    for lang, path in (("zh", args.zh), ("en", args.en)):
        rows = load_rows(path)
        answers = answers_of(path)
        items = evidence_of(rows, lang, cache, embedder)
        labels = [np.array([float(row.answerable and any(a in p["text"] for a in answers[row.id])) for p in passages])
                  for row, (passages, _) in zip(rows, items)]
        data[lang] = (rows, items, labels)
    print(f"evidence gathered in {time.perf_counter() - t0:.0f} s (embedder {name}, vectors cached in {args.cache})")

    xs, ys = [], []
    for lang, (rows, items, labels) in data.items():
        fitting = [i for i, r in enumerate(rows) if not held_out(r)]
        xs += matrix([items[i] for i in fitting], lang, thresholds.relevance(lang))
        ys += [labels[i] for i in fitting]
    model = fit(xs, ys)
    positives = np.vstack(xs)[np.concatenate(ys) == 1]
    model_file: dict = {"version": VERSION, "features": list(FEATURES), **export_trees(model), "thresholds": {},
                        "reference": {f: round(float(v), 5) for f, v in zip(FEATURES, positives.mean(axis=0))},
                        "trained_on": {}, "report": {}}
    print("importance: " + ", ".join(f"{f}={c:.2f}" for f, c in zip(FEATURES, model.feature_importances_)))
    for lang, (rows, items, labels) in data.items():
        floor = thresholds.relevance(lang)
        best = [max((e.relevance for e in ev), default=0.0) for _, ev in items]
        truth = [r.answerable for r in rows]
        fitting = [i for i, r in enumerate(rows) if not held_out(r)]
        test = [i for i, r in enumerate(rows) if held_out(r)]
        x = matrix(items, lang, floor)
        whole = [any(e.relevance >= floor and complete(e) for e in ev) for _, ev in items]
        t = best_threshold(model, [x[i] for i in fitting], [best[i] for i in fitting], [truth[i] for i in fitting], floor,
                           [whole[i] for i in fitting])
        model_file["thresholds"][lang] = t
        scores = {}
        for part, idx in (("fitting", fitting), ("held_out", test)):
            scores[part] = Scores.of(row_decisions(model, [x[i] for i in idx], [best[i] for i in idx], t, floor,
                                                   [whole[i] for i in idx]), [truth[i] for i in idx])
        model_file["report"][lang] = {k: dataclasses.asdict(v) for k, v in scores.items()}
        model_file["trained_on"][lang] = {"file": path_name(args.zh if lang == "zh" else args.en),
                                          "fitting_rows": len(fitting), "held_out_rows": len(test)}
        c = scores["held_out"].confusion
        print(f"{lang}: threshold {t:.2f}  fitting acc {scores['fitting'].accuracy:.3f}  "
              f"held-out acc {scores['held_out'].accuracy:.3f} ({scores['held_out'].rows} rows)  "
              f"answerable answered/refused {c['answerable/answered']}/{c['answerable/refused']}  "
              f"unanswerable answered/refused {c['unanswerable/answered']}/{c['unanswerable/refused']}")
    if args.write:
        MODEL_PATH.write_text(json.dumps(model_file, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"written {MODEL_PATH}")


def path_name(path: Path) -> str:
    return path.name if path.parent.name == "data" else f"{path.parent.name}/{path.name}"


if __name__ == "__main__":
    main()
