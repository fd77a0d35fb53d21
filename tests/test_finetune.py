"""Reranker fine-tuning on a tiny synthetic BEIR set with a tiny random BERT base (fast, offline)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from synthetic_beir import TOPICS, synthetic_beir

from sieve.evals.beir import load_split
from sieve.ingest.pipeline import Ingestor
from sieve.models.finetune_reranker import FinetuneConfig, finetune_reranker, held_back
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.rerank import FlagCrossEncoder
from sieve.stores.catalog import get_kb
from sieve.stores.types import SearchFilter

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("sentence_transformers")

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def tiny_base(folder: Path) -> Path:
    """A random 2-layer BERT encoder without a head, as all-MiniLM-L6-v2 is."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for t in TOPICS for w in t.split()} | {"about", "the", "is", "a", "story", "of", "what"})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *LETTERS, *(f"##{c}" for c in LETTERS)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast.from_pretrained(folder).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_base(tmp_path_factory.mktemp("tiny-base"))


def test_hard_negatives_train_a_cross_encoder_that_flag_embedding_loads(stack, tmp_path, base):
    data = synthetic_beir(tmp_path / "beir")
    split = load_split(data, "train")
    Ingestor(stack).ingest_beir(split.corpus, "ft", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "ft").id)
    retriever = HybridRetriever(stack)
    config = FinetuneConfig(holdout=0.3, candidates=5, negatives=2, epochs=1, batch_size=8, max_length=64)
    try:
        report = finetune_reranker(retriever, flt, split, base, tmp_path / "out", config)
    finally:
        retriever.close()

    heldout = sum(held_back(q, 0.3) for q in split.queries)
    assert 0 < heldout < len(split.queries)
    assert (report.heldout_queries, report.train_queries) == (heldout, len(split.queries) - heldout)
    # every training query has its one positive and two hard negatives mined from the other topics
    assert report.pairs == 3 * report.train_queries
    assert set(report.before) == set(report.after) == set(report.after_rrf) == {"hit@1", "hit@3", "hit@5", "mrr@10"}
    assert all(0.0 <= v <= 1.0 for v in [*report.before.values(), *report.after.values(), *report.after_rrf.values()])

    model = FlagCrossEncoder(Path(report.out))  # what reranker=flag loads from SIEVE_RERANKER_MODEL_PATH
    try:
        scores = model.score("green tea story", ["a story about the green tea.", "a story about the chess opening."])
        assert len(scores) == 2 and all(0.0 < s < 1.0 for s in scores)
    finally:
        model.close()


def test_the_cli_trains_and_prints_before_and_after(tmp_path, base, sieve):
    data = synthetic_beir(tmp_path / "beir")
    run = sieve(tmp_path / "home", "finetune", "reranker", "--base", str(base), "--data", str(data),
                "--split", "train", "--out", str(tmp_path / "out"), "--holdout", "0.3", "--candidates", "5", "--json")
    report = json.loads(run.stdout)
    assert report["pairs"] > 0 and set(report["after"]) == {"hit@1", "hit@3", "hit@5", "mrr@10"}
    assert (tmp_path / "out" / "config.json").is_file()
    missing = sieve(tmp_path / "home", "finetune", "reranker", "--base", str(tmp_path / "nope"), "--data", str(data),
                    "--split", "train", "--out", str(tmp_path / "out2"), check=False)
    assert missing.returncode == 1 and "never downloaded" in missing.stderr
