"""Embedder fine-tuning on the sample KB with a tiny random BERT: trained, exported to the int8 ONNX graph,
and a KB switched to it by re-embedding (fast, offline)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from retrieval_support import search
from sqlalchemy import select

from sieve.errors import InvalidInput
from sieve.ingest.pipeline import Ingestor
from sieve.ingest.reembed import reembed
from sieve.models.finetune_embedder import (
    EmbedderFinetuneConfig,
    Example,
    finetune_embedder,
    fused_ndcg,
    kb_examples,
    mined_negatives,
    split,
)
from sieve.models.tuned_embedder import load_tuned_embedder
from sieve.retrievers.profile import RetrievalProfile
from sieve.settings import Settings
from sieve.stores.catalog import get_kb
from sieve.stores.metadata import EmbeddingCacheEntry, KnowledgeBase
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("sentence_transformers")

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def tiny_bert(folder: Path) -> Path:
    """A random 2-layer BERT (hidden 32) with a vocabulary of a few words and single letters."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["query", "passage", "the", "a", "of", "and", "is", "apple", "tea", "marathon", "huawei", "photosynthesis"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", ".", *words, *LETTERS, *(f"##{c}" for c in LETTERS)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast.from_pretrained(folder).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=512), add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_the_export_embeds_as_the_float_model(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from sieve.models.tuned_embedder import export_embedder

    base = tiny_bert(tmp_path / "base")
    model, tokenizer = AutoModel.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    export_embedder(model, tokenizer, tmp_path / "out", "tiny", e5_base=False)
    texts = ["the marathon is a long race", "photosynthesis of a green leaf"]
    onnx_vectors = load_tuned_embedder(tmp_path / "out").embed_passages(texts)
    encoded = tokenizer(["passage: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"][..., None]
    reference = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    # int8 layers and a 4-bit word table, as the shipped graph: near-identical, not equal
    assert np.all((onnx_vectors * reference).sum(axis=1) > 0.99)


def test_fine_tune_export_and_reembed_switch_a_kb_to_its_own_model(stack, settings, sample_kb, tmp_path):
    Ingestor(stack).ingest_paths([sample_kb], "kb", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "kb").id)
    examples = kb_examples(stack, flt)
    assert len(examples) == 8  # one title -> body pair per document
    out = tmp_path / "tuned"
    config = EmbedderFinetuneConfig(holdout=0.3, candidates=5, steps=3, batch_size=4, max_length=64)
    report = finetune_embedder(stack, flt, examples, out, tiny_bert(tmp_path / "base"), config)

    training, heldout = split(examples, 0.3)
    assert not set(training) & set(heldout)
    assert (report.heldout_queries, report.train_queries, report.steps) == (len(heldout), len(training), 3)
    assert report.pairs == report.train_queries  # one positive each, with its mined hard negative
    assert set(report.before) == set(report.after) == {"ndcg@10", "recall@100"}
    assert all(0.0 <= v <= 1.0 for v in [*report.before.values(), *report.after.values()])
    # the KB's fused retrieval measured too: as it stands, and with the fine-tuned model in its dense path
    # and with the fusion re-chosen for each dense path by cross-validation over the held-back queries
    fused = [report.fused_before, report.fused_after, report.fused_tuned_before, report.fused_tuned_after]
    assert all(set(scores) == {"ndcg@10"} and 0.0 <= scores["ndcg@10"] <= 1.0 for scores in fused)

    tuned = load_tuned_embedder(out)
    vector = tuned.embed_queries(["how long is a marathon"])
    assert vector.shape == (1, 32) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    # the vector space is named by the graph's hash: cache entries of the two models never mix
    assert report.model == tuned.name != stack.embedder.name
    # measuring put the KB's chunks into the model's space only while it ran: the profile does not name it yet
    assert stack.model_space(out).vectors.search(vector[0], flt, 5) == []
    with stack.sessions() as session:
        models = set(session.scalars(select(EmbeddingCacheEntry.model).distinct()))
    assert {stack.embedder.name, tuned.name} <= models

    with pytest.raises(ValidationError, match="not an embedder folder"):
        RetrievalProfile(embedding_model=str(tmp_path / "base"))
    with pytest.raises(InvalidInput, match="not an embedder folder"):
        reembed(stack, "t1", "kb", tmp_path / "base")

    query = stack.embedder.embed_queries(["how long is a marathon"])[0]
    assert stack.vectors.search(query, flt, 5)  # the default space serves the KB until the switch
    switched = reembed(stack, "t1", "kb", out)
    assert (switched.model, switched.documents) == (tuned.name, 8)
    assert switched.embedded == 0  # measuring the fine-tuned model embedded the KB's chunks already
    with stack.sessions() as session:
        assert session.get(KnowledgeBase, flt.kb).profile["embedding_model"] == str(out.resolve())
    assert stack.vectors.search(query, flt, 5) == []  # the old space no longer holds the KB
    # the default deployment searches the switched KB in its model's space: queries embedded by that model
    assert_dense_search_finds(stack, flt)
    stack.close()

    # a deployment serving the fine-tuned model (SIEVE_EMBEDDER=tuned) finds the KB's chunks by dense search
    served = Settings(home=settings.home, database_url=settings.database_url, embedder="tuned", embedder_model_path=out)
    with Stack(served) as tuned_stack:
        assert_dense_search_finds(tuned_stack, flt)
        # ingest into the switched KB embeds with its model
        Ingestor(tuned_stack).ingest_paths([sample_kb / "marathon.txt"], "kb", "t1")


def assert_dense_search_finds(stack: Stack, flt: SearchFilter) -> None:
    result = search(stack, "how long is a marathon", flt, ["dense"], top_k=3)
    by_words = search(stack, "how long is a marathon", flt, ["bm25"], top_k=3)
    assert len(result.hits) == 3 and not result.degraded
    relevances = [hit.relevance for hit in [*result.hits, *by_words.hits]]
    assert all(r is not None and -1.0 <= r <= 1.0 for r in relevances)  # cosines within the one space


def test_pairs_file_gives_one_document_per_positive_and_names_a_bad_line(tmp_path):
    from sieve.models.finetune_embedder import pair_examples

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "how long is a marathon", "positive": "A marathon is 42.195 km."}\n\n'
                     '{"query": "苹果公司在哪里", "positive": "Apple Inc. is based in Cupertino."}\n', encoding="utf-8")
    examples, extra = pair_examples(pairs)
    assert [e.query for e in examples.values()] == ["how long is a marathon", "苹果公司在哪里"]
    assert sorted(extra.values()) == ["A marathon is 42.195 km.", "Apple Inc. is based in Cupertino."]
    assert all(set(e.relevant) <= set(extra) for e in examples.values())
    pairs.write_text('{"query": "q", "positive": "p"}\n{"query": "no positive"}\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"pairs.jsonl:2: expected a JSON object"):
        pair_examples(pairs)


def test_mined_negatives_leave_out_relevant_documents_and_copies_of_positives():
    example = Example("how long is a marathon", {"d1": 1}, ["A marathon is 42.195 km long."])
    hits = {"q": [("d1", "A marathon is 42.195 km long."), ("d2", "a marathon  is 42.195 km long."),
                  ("d3", "Tea is a drink.")]}
    assert mined_negatives({"q": example}, hits) == {"q": ["Tea is a drink."]}
    # the fused order's nDCG@10 counts each document once: d1 second, after d3
    assert fused_ndcg({"q": example}, {"q": [("d3", ""), ("d3", ""), ("d1", "")]}) == {"ndcg@10": round(1 / np.log2(3), 4)}
