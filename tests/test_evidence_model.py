"""The shipped evidence model file: it loads, it describes the features the code computes, and its
training report is about the development data in the repository as split today; with word vectors,
a stated value is weighed by how well it fits what is asked.

(Recomputing the report's figures embeds ~3,000 passages: `evals/train_evidence.py --check` does it.)"""

from __future__ import annotations

import json
from pathlib import Path

from graph_support import embedder

from sieve.evals.refusal import held_out, load_rows
from sieve.graphs.shared.context import Thresholds
from sieve.graphs.shared.evidence_model import FEATURES, MODEL_PATH, evidence_model
from sieve.graphs.shared.grading import grade_passages
from sieve.graphs.shared.state import Passage

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


def test_with_word_vectors_a_stated_value_that_fits_the_question_answers_it():
    """"At 168 grams" answers "how much does it weigh" though it repeats no word of the question; the
    battery life of the same phone, stated the same way, does not."""
    words = embedder()
    limits = Thresholds().grade_limits("en")
    question = "How much does the Lumen X1 weigh?"
    intro = "The Lumen X1 is Corvid Mobile's first phone."

    def graded(statement: str):
        passage = Passage(chunk_id="x1#0", doc_id="x1", filename="lumen-x1.md", text=f"{intro} {statement}",
                          score=0.0, relevance=0.88, path_scores={})
        return grade_passages(question, [passage], "en", limits, 4, lambda w: words.embed_passages(list(w)))

    assert graded("At 168 grams, it is easy to carry in one hand.").outcome == "kept"
    battery = graded("On a full charge it lasts about 19 hours of mixed use.")
    assert battery.outcome == "no_evidence" and battery.explanation
