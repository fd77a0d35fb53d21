"""`sieve eval tune`: fusion settings searched on labelled queries, cross-validated, stored in the profile."""

from __future__ import annotations

import json
from pathlib import Path

from synthetic_beir import synthetic_beir

from sieve.evals.beir import BeirSplit
from sieve.evals.tune import FusionSetting, PathRuns, fold_of, tune
from sieve.retrievers.fusion import FusionMode
from sieve.retrievers.profile import RetrievalProfile
from sieve.stores.types import ScoredChunk


def test_tuning_finds_the_weighting_that_ranks_the_relevant_document_first():
    # on every query dense ranks the relevant document first and BM25 second: equal-weight RRF ties
    # them and keeps BM25's order, so only a setting that trusts dense more gets them right
    qids = [f"q{i}" for i in range(20)]
    runs = PathRuns(["bm25", "dense"], {}, {})
    for q in qids:
        rel, other = f"{q}-rel", f"{q}-other"
        runs.ranked[q] = {"bm25": [ScoredChunk(other, other, 9.0), ScoredChunk(rel, rel, 8.0)],
                          "dense": [ScoredChunk(rel, rel, 0.9), ScoredChunk(other, other, 0.8)]}
        runs.filename |= {rel: rel, other: other}
    split = BeirSplit("train", Path("unused"), {q: q for q in qids}, {q: {f"{q}-rel": 1} for q in qids})
    current = FusionSetting.of(RetrievalProfile(fusion="rrf", weights={"bm25": 1.0, "dense": 1.0}), ["bm25", "dense"])

    report = tune(runs, split, current, folds=4)

    rows = {r.name: r for r in report.rows}
    assert rows["dense"].ndcg == 1.0 and rows["bm25"].ndcg < 0.7
    assert rows["current"].ndcg == rows["bm25"].ndcg  # the tie falls to BM25's order
    # chosen without the fold it is scored on, each time: still every query right
    assert rows["tuned"].heldout_ndcg == 1.0 and len(report.fold_choices) == 4
    weights = report.winner["weights"]
    assert report.winner["fusion"] is FusionMode.WEIGHTED or weights["dense"] > weights["bm25"]
    assert {fold_of(q, 4) for q in qids} == {0, 1, 2, 3}


def test_the_cli_reports_the_table_and_stores_the_winner(tmp_path, sieve):
    data = synthetic_beir(tmp_path / "beir")
    home = tmp_path / "home"
    sieve(home, "eval", "retrieval", "--data", str(data), "--split", "train", "--json")  # ingests eval-beir
    sieve(home, "profile", "set", "--kb", "eval-beir", "fusion=rrf", "rrf_k=7")

    table = sieve(home, "eval", "tune", "--kb", "eval-beir", "--data", str(data), "--folds", "3", "--dry-run").stdout
    assert "held-out nDCG@10" in table and "dry run, not stored" in table

    report = json.loads(sieve(home, "eval", "tune", "--kb", "eval-beir", "--data", str(data), "--folds", "3",
                              "--json").stdout)
    assert report["stored"] is True and report["queries"] == 24
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows)[:4] == ["bm25", "dense", "current", "tuned"]
    assert "k=7" in rows["current"]["setting"]  # the dry run stored nothing
    assert rows["tuned"]["ndcg"] >= rows["current"]["ndcg"]
    profile = json.loads(sieve(home, "profile", "show", "--kb", "eval-beir", "--json").stdout)
    assert {k: profile[k] for k in report["winner"]} == report["winner"]


def test_labels_that_name_no_document_of_the_kb_are_refused(tmp_path, sieve):
    data = synthetic_beir(tmp_path / "beir")
    home = tmp_path / "home"
    (tmp_path / "note.txt").write_text("a note about nothing labelled", encoding="utf-8")
    sieve(home, "ingest", str(tmp_path / "note.txt"), "--kb", "other", "--json")
    wrong = sieve(home, "eval", "tune", "--kb", "other", "--data", str(data), check=False)
    assert wrong.returncode == 1 and "ingest that corpus" in wrong.stderr
    (data / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n", encoding="utf-8")
    ambiguous = sieve(home, "eval", "tune", "--kb", "other", "--data", str(data), check=False)
    assert ambiguous.returncode == 1 and "--split" in ambiguous.stderr
