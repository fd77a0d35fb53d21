"""The shipped evidence model file: it loads, it describes the features the code computes, and its
training report is about the development data in the repository as split today.

(Recomputing the report's figures embeds ~3,000 passages: `evals/train_evidence.py --check` does it.)"""

from __future__ import annotations

import json
from pathlib import Path

from sieve.evals.refusal import held_out, load_rows
from sieve.graphs.shared.evidence_model import FEATURES, MODEL_PATH, evidence_model

EN = Path(__file__).resolve().parents[1] / "evals" / "data" / "answer_or_refuse_en.jsonl"


def test_the_shipped_model_loads_and_reads_the_features_the_code_computes():
    model = evidence_model()
    assert model.features == FEATURES
    assert model.trees or len(model.weights) == len(FEATURES)
    assert all(0.0 < model.threshold(lang) < 1.0 for lang in ("zh", "en"))


def test_its_report_is_about_the_held_out_half_of_the_english_set_as_split_today():
    report = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    rows = load_rows(EN)
    held = [r for r in rows if held_out(r)]
    recorded = report["report"]["en"]["held_out"]
    assert recorded["rows"] == len(held) == report["trained_on"]["en"]["held_out_rows"]
    confusion = recorded["confusion"]
    assert confusion["answerable/answered"] + confusion["answerable/refused"] == sum(r.answerable for r in held)
    assert report["trained_on"]["en"]["fitting_rows"] == len(rows) - len(held)
    # the model was chosen by cross-validation on the fitting part, and the choice is recorded
    assert report["model"] in report["cross_validation"]
