"""Trains the evidence model of deterministic grading (`graphs/shared/evidence_model.json`) and reports it.

    .venv/bin/python evals/train_evidence.py [--zh PATH] [--en PATH] [--cache DIR] [--write | --check | --rescore]

Data: rgb-zh answer_or_refuse (Chinese news) and evals/data/answer_or_refuse_en.jsonl (English
product, technical, policy and encyclopedic documents). Only the fitting part of each is used
(`sieve.evals.refusal.held_out` is false): the model (boosted trees or logistic regression,
`CANDIDATES`) is chosen by 5-fold cross-validation on it (mean over `FOLD_SALTS` fold
assignments), refitted on all of it, and the held-out part is scored once at the end. `--check`
recomputes the shipped model's held-out figures through the runtime model and exits 1 when they
differ from its report or when a data file is not the one the report describes (its sha256 is recorded).
`--rescore` re-scores the shipped model (trees and thresholds untouched) on today's data files and
writes that report, for when a data file was corrected after the model was trained.

A passage is a positive example when its row is answerable and it contains one of the row's
answers. Relevance is the e5 query-passage cosine; synonym matching and kind fit compare e5 word
vectors (`grading.with_synonyms`; fit centres them on the mean vector of the fitting English passages'
words, stored in the model file); all vectors are cached in
`--cache` (a file under /tmp by default), so refitting takes seconds. The per-language threshold
is the one with the best row accuracy on the fitting part (answer when some relevant passage
reaches the threshold of its own language).
`--write` stores coefficients, thresholds and this report in the model file.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sieve.bench.bench_graph import VectorCache, build_embedder
from sieve.evals.refusal import Row, Scores, held_out, load_rows, row_passage
from sieve.graphs.shared.context import Thresholds
from sieve.graphs.shared.evidence_model import FEATURES, MODEL_PATH, complete, features, load
from sieve.graphs.shared.grading import Evidence, content_words, gather_evidence, language_of, with_synonyms
from sieve.graphs.shared.state import Passage

REPO = Path(__file__).resolve().parents[1]
ZH = REPO.parent / "shared" / "data" / "rgb-zh" / "answer_or_refuse.jsonl"
EN = REPO / "evals" / "data" / "answer_or_refuse_en.jsonl"
VERSION = "5"
# shallow trees and large leaves: deeper ones fit the ~2,000 training passages to 0.95 and do worse held out
TREES, RATE, DEPTH, LEAF = 100, 0.05, 2, 40


def answers_of(path: Path) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        flat[str(row["id"])] = [x for a in row["answers"] for x in (a if isinstance(a, list) else [a])]
    return flat


def evidence_of(rows: list[Row], lang: str, cache: VectorCache, embedder,
                word_mean: np.ndarray | None) -> list[tuple[list[Passage], list[Evidence]]]:
    """Each row's passages, most relevant first, with relevance, synonym matching and kind fit from e5
    (fit centred on `word_mean`; None: the shipped model's)."""
    queries = dict(zip([r.query for r in rows], cache.get(embedder, "query", [r.query for r in rows])))
    texts = sorted({d for r in rows for d in r.docs})
    vectors = dict(zip(texts, cache.get(embedder, "passage", texts)))
    out = []
    for row in rows:
        passages = sorted((row_passage(row, i, float(vectors[text] @ queries[row.query])) for i, text in enumerate(row.docs)),
                          key=lambda p: -(p["relevance"] or 0.0))
        evidence = with_synonyms(gather_evidence(row.query, passages, lang), lang,
                                 lambda words: cache.get(embedder, "passage", words), word_mean)
        out.append((passages, evidence))
    return out


def english_word_mean(rows: list[Row], cache: VectorCache, embedder) -> np.ndarray:
    """The mean e5 vector of the words of the fitting rows' English passages, which `Sentence.fit`
    centres word vectors on (rounded as the model file stores it)."""
    words = sorted({w for r in rows if not held_out(r) for d in r.docs for w in content_words(d)})
    return np.round(cache.get(embedder, "passage", words).mean(axis=0), 6)


def matrix(items, lang: str, min_relevance: float) -> list[np.ndarray]:
    return [np.array([[features(evidence, i, lang, min_relevance)[f] for f in FEATURES] for i in range(len(evidence))])
            for _, evidence in items]


Model = GradientBoostingClassifier | Pipeline
# candidates compared by cross-validation on the fitting part; shallow trees with large leaves and a
# strongly regularised logistic regression, as ~2,000 training passages overfit anything bigger
CANDIDATES: dict[str, Callable[[], Model]] = {
    "trees d2": lambda: GradientBoostingClassifier(n_estimators=TREES, max_depth=DEPTH, learning_rate=RATE,
                                                   subsample=0.8, min_samples_leaf=LEAF, random_state=0),
    "trees d3": lambda: GradientBoostingClassifier(n_estimators=TREES, max_depth=3, learning_rate=RATE,
                                                   subsample=0.8, min_samples_leaf=LEAF, random_state=0),
    "logistic C=0.1": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
    "logistic C=1": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
}
FOLDS = 5
# fold assignments the cross-validation is repeated over: on ~140 Chinese rows one row is 0.7 points,
# so a single assignment ranks candidates by noise
FOLD_SALTS = ("", "a", "b", "c", "d")


def fit(make: Callable[[], Model], x: list[np.ndarray], y: list[np.ndarray]) -> Model:
    return make().fit(np.vstack(x), np.concatenate(y))


def export(model: Model) -> dict:
    """The model as plain numbers, evaluated by `graphs/shared/evidence_model.py` without sklearn."""
    if isinstance(model, Pipeline):  # standardisation folded into the coefficients
        scaler, logistic = model.named_steps["standardscaler"], model.named_steps["logisticregression"]
        weights = logistic.coef_[0] / scaler.scale_
        bias = float(logistic.intercept_[0] - weights @ scaler.mean_)
        return {"kind": "logistic", "init": round(bias, 6), "rate": 1.0, "trees": [],
                "weights": [round(float(w), 6) for w in weights]}
    trees = []
    for estimator in model.estimators_[:, 0]:
        t = estimator.tree_
        trees.append({"left": t.children_left.tolist(), "right": t.children_right.tolist(),
                      "feature": [max(int(f), 0) for f in t.feature],
                      "threshold": [round(float(v), 6) for v in t.threshold],
                      "value": [round(float(v), 6) for v in t.value[:, 0, 0]]})
    init = float(model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0, 0])
    return {"kind": "trees", "init": round(init, 6), "rate": RATE, "trees": trees}


@dataclasses.dataclass
class LangRows:
    """One language's rows with what the fitting needs, per row: passage features and labels."""

    rows: list[Row]
    x: list[np.ndarray]  # passages x FEATURES
    y: list[np.ndarray]  # 1 where the passage states one of the row's answers
    relevant: list[np.ndarray]  # passage reaches the relevance threshold
    whole: list[np.ndarray]  # passage has a sentence stating the whole answer (`evidence_model.complete`)
    langs: list[list[str]]  # each passage's language: its threshold is that language's, as in the grade node

    def part(self, held: bool) -> list[int]:
        return [i for i, r in enumerate(self.rows) if held_out(r) == held]


def fold_of(row: Row, salt: str = "") -> int:
    """Cross-validation fold of a fitting row (both variants of a question in one fold)."""
    return int(hashlib.sha1((salt + row.question_id).encode()).hexdigest(), 16) // 2 % FOLDS


def row_decisions(probabilities: list[np.ndarray], data: LangRows, idx: list[int],
                  thresholds: dict[str, float]) -> list[bool]:
    """Answer when some relevant passage reaches its language's threshold or states the whole answer:
    the grade node's rule."""
    return [bool((data.relevant[i] & ((probabilities[i] >= np.array([thresholds[lang] for lang in data.langs[i]]))
                                      | data.whole[i])).any()) for i in idx]


def best_threshold(probabilities: list[np.ndarray], data: LangRows, idx: list[int], lang: str,
                   fitted: dict[str, float]) -> float:
    """The threshold of `lang` with the best accuracy on these rows (other languages' passages at their
    `fitted` thresholds, or this one where not fitted yet); the middle of the best run on a tie."""
    grid = np.round(np.linspace(0.05, 0.95, 91), 3)
    truth = [data.rows[i].answerable for i in idx]
    scores = [Scores.of(row_decisions(probabilities, data, idx, {"zh": t, "en": t, **fitted, lang: t}), truth).accuracy
              for t in grid]
    top = max(scores)
    winners = [t for t, s in zip(grid, scores) if s == top]
    return float(winners[len(winners) // 2])


def predict(model: Model, data: LangRows) -> list[np.ndarray]:
    return [model.predict_proba(x)[:, 1] for x in data.x]


def cross_validate(make: Callable[[], Model], data: dict[str, LangRows], salt: str = "") -> dict[str, float]:
    """Row accuracy per language over FOLDS folds of the fitting part (threshold fitted in each fold)."""
    correct = {lang: 0 for lang in data}
    for fold in range(FOLDS):
        train = {lang: [i for i in d.part(False) if fold_of(d.rows[i], salt) != fold] for lang, d in data.items()}
        model = fit(make, [d.x[i] for lang, d in data.items() for i in train[lang]],
                    [d.y[i] for lang, d in data.items() for i in train[lang]])
        probabilities = {lang: predict(model, d) for lang, d in data.items()}
        thresholds = fit_thresholds(probabilities, data, train)
        for lang, d in data.items():
            test = [i for i in d.part(False) if fold_of(d.rows[i], salt) == fold]
            correct[lang] += sum(a == r.answerable for a, r in
                                 zip(row_decisions(probabilities[lang], d, test, thresholds), [d.rows[i] for i in test]))
    return {lang: round(correct[lang] / len(d.part(False)), 4) for lang, d in data.items()}


def fit_thresholds(probabilities: dict[str, list[np.ndarray]], data: dict[str, LangRows],
                   idx: dict[str, list[int]]) -> dict[str, float]:
    """Each language's threshold on its rows, the language with the fewest passages in another
    language first (the English set has none; rgb-zh has a few English ones)."""
    fitted: dict[str, float] = {}
    for lang in sorted(data, key=lambda lang: sum(x != lang for ps in data[lang].langs for x in ps)):
        fitted[lang] = best_threshold(probabilities[lang], data[lang], idx[lang], lang, fitted)
    return fitted


def summary(scores: Scores) -> str:
    c = scores.confusion
    answered = c["answerable/answered"] + c["unanswerable/answered"]
    answerable = c["answerable/answered"] + c["answerable/refused"]
    precision = c["answerable/answered"] / answered if answered else 0.0
    recall = c["answerable/answered"] / answerable if answerable else 0.0
    return (f"acc {scores.accuracy:.3f} ({scores.rows} rows)  precision of answered {precision:.3f}  "
            f"recall of answerable {recall:.3f}  answerable answered/refused "
            f"{c['answerable/answered']}/{c['answerable/refused']}  unanswerable answered/refused "
            f"{c['unanswerable/answered']}/{c['unanswerable/refused']}")


def gather_all(args: argparse.Namespace) -> tuple[dict[str, LangRows], np.ndarray | None]:
    """Both sets' rows with their features, and the word mean fit was computed with (None under
    `--check`: the shipped model's, as at runtime)."""
    name, embedder = build_embedder("auto")
    cache = VectorCache(args.cache / f"vectors-{name}.npz")
    thresholds = Thresholds()
    data = {}
    t0 = time.perf_counter()
    mean = None if args.check or args.rescore else english_word_mean(load_rows(args.en), cache, embedder)
    for lang, path in (("zh", args.zh), ("en", args.en)):
        rows = load_rows(path)
        answers = answers_of(path)
        items = evidence_of(rows, lang, cache, embedder, mean)
        floor = thresholds.relevance(lang)
        data[lang] = LangRows(
            rows, matrix(items, lang, floor),
            [np.array([float(row.answerable and any(a in p["text"] for a in answers[row.id])) for p in passages])
             for row, (passages, _) in zip(rows, items)],
            [np.array([e.relevance >= floor for e in ev]) for _, ev in items],
            [np.array([bool(complete(e)) for e in ev]) for _, ev in items],
            [[language_of(p["text"]) for p in passages] for passages, _ in items])
    print(f"evidence gathered in {time.perf_counter() - t0:.0f} s (embedder {name}, vectors cached in {args.cache})")
    return data, mean


def check(data: dict[str, LangRows], files: dict[str, Path]) -> None:
    """Recompute the shipped model's held-out figures through the runtime model; exit 1 if they differ."""
    shipped = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    differ = False
    for lang, scores in shipped_scores(data).items():
        recorded = shipped["report"][lang]["held_out"]
        same = dataclasses.asdict(scores["held_out"]) == recorded
        changed = shipped["trained_on"][lang].get("sha256") != fingerprint(files[lang])
        differ |= changed or not same
        verdict = "matches the model file" if same else f"DIFFERS from the model file's {recorded}"
        print(f"{lang} held-out, recomputed: {summary(scores['held_out'])}  {verdict}"
              + ("  (the data file is not the one the report describes: --rescore)" if changed else ""))
    raise SystemExit(1 if differ else 0)


def rescore(data: dict[str, LangRows], files: dict[str, Path]) -> None:
    """The shipped model's report re-scored on today's data files; trees and thresholds are untouched."""
    shipped = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    for lang, scores in shipped_scores(data).items():
        shipped["report"][lang] = {k: dataclasses.asdict(v) for k, v in scores.items()}
        shipped["trained_on"][lang]["sha256"] = fingerprint(files[lang])
        shipped["trained_on"][lang]["rescored"] = True
        print(f"{lang}: fitting {summary(scores['fitting'])}\n{lang}: held-out {summary(scores['held_out'])}")
    MODEL_PATH.write_text(json.dumps(shipped, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"written {MODEL_PATH} (report only)")


def shipped_scores(data: dict[str, LangRows]) -> dict[str, dict[str, Scores]]:
    """The shipped model's row decisions on each language's fitting and held-out parts."""
    model = load(MODEL_PATH)
    out = {}
    for lang, d in data.items():
        probabilities = [np.array([model.probability(dict(zip(FEATURES, row))) for row in x]) for x in d.x]
        out[lang] = {part: Scores.of(row_decisions(probabilities, d, d.part(held), model.thresholds),
                                     [d.rows[i].answerable for i in d.part(held)])
                     for part, held in (("fitting", False), ("held_out", True))}
    return out


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zh", type=Path, default=ZH)
    parser.add_argument("--en", type=Path, default=EN)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sieve-evidence"))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="store the model in graphs/shared/evidence_model.json")
    mode.add_argument("--check", action="store_true",
                      help="recompute the shipped model's held-out figures and compare them with its report")
    mode.add_argument("--rescore", action="store_true",
                      help="re-score the shipped model on today's data files and store that report")
    args = parser.parse_args()
    data, mean = gather_all(args)
    files = {"zh": args.zh, "en": args.en}
    if args.check:
        check(data, files)
    if args.rescore:
        rescore(data, files)
        return

    cv = {}
    for name, make in CANDIDATES.items():
        runs = [cross_validate(make, data, salt) for salt in FOLD_SALTS]
        cv[name] = {lang: round(float(np.mean([r[lang] for r in runs])), 4) for lang in data}
        print(f"cross-validation on the fitting part ({len(FOLD_SALTS)} fold assignments), {name}: "
              + "  ".join(f"{k} {v:.3f}" for k, v in cv[name].items()))
    chosen = max(cv, key=lambda n: sum(cv[n].values()))
    fitting = {lang: d.part(False) for lang, d in data.items()}
    model = fit(CANDIDATES[chosen], [d.x[i] for lang, d in data.items() for i in fitting[lang]],
                [d.y[i] for lang, d in data.items() for i in fitting[lang]])
    xs = np.vstack([d.x[i] for lang, d in data.items() for i in fitting[lang]])
    positives = xs[np.concatenate([d.y[i] for lang, d in data.items() for i in fitting[lang]]) == 1]
    model_file: dict = {"version": VERSION, "model": chosen, "features": list(FEATURES), **export(model),
                        "thresholds": {}, "word_mean": [float(v) for v in mean] if mean is not None else [],
                        "reference": {f: round(float(v), 5) for f, v in zip(FEATURES, positives.mean(axis=0))},
                        "cross_validation": cv, "trained_on": {}, "report": {}}
    print(f"chosen: {chosen}")
    probabilities = {lang: predict(model, d) for lang, d in data.items()}
    model_file["thresholds"] = fit_thresholds(probabilities, data, fitting)
    for lang, d in data.items():
        t = model_file["thresholds"][lang]
        scores = {part: Scores.of(row_decisions(probabilities[lang], d, d.part(held), model_file["thresholds"]),
                                  [d.rows[i].answerable for i in d.part(held)])
                  for part, held in (("fitting", False), ("held_out", True))}
        model_file["report"][lang] = {k: dataclasses.asdict(v) for k, v in scores.items()}
        model_file["trained_on"][lang] = {"file": path_name(args.zh if lang == "zh" else args.en),
                                          "fitting_rows": len(fitting[lang]), "held_out_rows": len(d.part(True)),
                                          "sha256": fingerprint(args.zh if lang == "zh" else args.en)}
        print(f"{lang}: threshold {t:.2f}  fitting {summary(scores['fitting'])}")
        print(f"{lang}: held-out {summary(scores['held_out'])}")
    if args.write:
        MODEL_PATH.write_text(json.dumps(model_file, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"written {MODEL_PATH}")


def path_name(path: Path) -> str:
    return path.name if path.parent.name == "data" else f"{path.parent.name}/{path.name}"


if __name__ == "__main__":
    main()
