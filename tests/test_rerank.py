"""Rerank providers: a tiny random cross-encoder through FlagEmbedding, and a loopback server speaking
vLLM's `/rerank` and `/score` wire formats that scores with the real offline embedder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from openai_wire import serve
from pydantic import BaseModel

from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.rerank import (
    EmbeddingReranker,
    EndpointReranker,
    FlagCrossEncoder,
    Reranker,
    RerankerKind,
    RerankMode,
    build_reranker,
    reranked_order,
)
from sieve.stores.catalog import get_kb
from sieve.stores.types import SearchFilter

os.environ["HF_HUB_OFFLINE"] = "1"

WORDS = "the a of to and in is apple iphone company tea china grown where are who founded 苹 果 茶".split()
LETTERS = "abcdefghijklmnopqrstuvwxyz"
TEXTS = ["Apple designs the iPhone.", "Tea is grown in China.", "Marathon runners train for years."]


def tiny_cross_encoder(folder: Path) -> Path:
    """A random 2-layer BERT with a one-logit head: a cross-encoder of the shape bge-reranker has."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *LETTERS, *(f"##{c}" for c in LETTERS)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast.from_pretrained(folder).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1, initializer_range=0.5)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory) -> Path:
    pytest.importorskip("FlagEmbedding")
    return tiny_cross_encoder(tmp_path_factory.mktemp("tiny-reranker"))


class RerankBody(BaseModel):
    model: str
    query: str
    documents: list[str]
    top_n: int | None = None


class ScoreBody(BaseModel):
    model: str
    text_1: str
    text_2: list[str]


def rerank_server(embedder) -> FastAPI:
    """vLLM's response shapes; results sorted best first, as vLLM returns them."""
    app = FastAPI()
    scorer = EmbeddingReranker(embedder)

    @app.post("/v1/rerank")
    def rerank(body: RerankBody) -> dict:
        scores = scorer.score(body.query, body.documents)
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[: body.top_n or len(scores)]
        return {"id": "rerank-1", "model": body.model, "usage": {"total_tokens": 1},
                "results": [{"index": i, "document": {"text": body.documents[i]}, "relevance_score": scores[i]}
                            for i in order]}

    @app.post("/v1/score")
    def score(body: ScoreBody) -> dict:
        scores = scorer.score(body.text_1, body.text_2)
        return {"id": "score-1", "object": "list", "model": body.model, "usage": {"total_tokens": 1},
                "data": [{"index": i, "object": "score", "score": s} for i, s in enumerate(scores)]}

    return app


@pytest.fixture(scope="module")
def endpoint(embedder):
    with serve(rerank_server(embedder)) as url:
        yield f"{url}/v1"


def test_flag_cross_encoder_scores_each_text_in_order_on_a_0_1_scale(cross_encoder_dir):
    reranker = FlagCrossEncoder(cross_encoder_dir)
    try:
        assert isinstance(reranker, Reranker) and reranker.name == f"flag:{cross_encoder_dir.name}"
        scores = reranker.score("who founded apple", TEXTS)
        assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)
        assert len(set(scores)) == 3  # a random model still tells different texts apart
        # one text alone scores as it does in a batch; the async twin agrees
        assert reranker.score("who founded apple", TEXTS[1:2]) == pytest.approx(scores[1:2], abs=1e-5)
        assert asyncio.run(reranker.ascore("who founded apple", TEXTS)) == pytest.approx(scores, abs=1e-5)
        assert reranker.score("who founded apple", []) == []
    finally:
        reranker.close()


def test_a_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded.*SIEVE_RERANKER_MODEL_PATH"):
        FlagCrossEncoder(tmp_path / "bge-reranker-v2-m3")


@pytest.mark.parametrize("kind", [RerankerKind.RERANK_API, RerankerKind.SCORE_API])
def test_endpoint_scores_match_the_model_behind_it(endpoint, embedder, kind):
    remote = EndpointReranker(endpoint, "e5-cosine", kind)
    local = EmbeddingReranker(embedder).score("where is tea grown", TEXTS)
    try:
        assert remote.score("where is tea grown", TEXTS) == pytest.approx(local, abs=1e-5)
        assert asyncio.run(remote.ascore("where is tea grown", TEXTS)) == pytest.approx(local, abs=1e-5)
        assert max(range(3), key=lambda i: local[i]) == 1
    finally:
        remote.close()


def test_providers_need_their_deployment_settings(settings, embedder):
    assert build_reranker(RerankerKind.NONE, settings) is None
    assert isinstance(build_reranker(RerankerKind.EMBEDDING, settings, embedder), EmbeddingReranker)
    with pytest.raises(ValueError, match="SIEVE_RERANKER_MODEL_PATH"):
        build_reranker(RerankerKind.FLAG, settings)
    with pytest.raises(ValueError, match="SIEVE_RERANKER_BASE_URL"):
        build_reranker(RerankerKind.SCORE_API, settings)


@pytest.fixture
def flt(stack, sample_kb) -> SearchFilter:
    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    with stack.sessions() as session:
        return SearchFilter("t1", get_kb(session, "t1", "demo").id)


def retrieve(stack, flt, query: str, **profile):
    # generous budgets: these tests are about what reranking does, not how fast (bench/bench_rerank.py)
    profile = {"rerank_budget_ms": 120_000, "total_budget_ms": 180_000, "rerank_top_n": 8, **profile}
    retriever = HybridRetriever(stack)
    try:
        return asyncio.run(retriever.retrieve(query, flt, profile=retriever.load_profile(flt.kb).merged(**profile)))
    finally:
        retriever.close()


def test_hybrid_reranks_through_the_endpoint(stack, flt, endpoint):
    stack.settings = stack.settings.model_copy(update={"reranker_base_url": endpoint, "reranker_model": "e5-cosine"})
    fused = retrieve(stack, flt, "Chinese apples", top_k=5)
    reranked = retrieve(stack, flt, "Chinese apples", top_k=5, reranker=RerankerKind.SCORE_API,
                        relevance_threshold=0.82)
    assert reranked.degraded == [] and reranked.relevance_threshold == 0.82
    relevance = [h.relevance for h in reranked.hits]
    assert relevance == sorted(relevance, reverse=True)
    # the same candidates, reordered; relevance is the endpoint's score (here the same cosine)
    assert {h.chunk_id for h in reranked.hits} <= {h.chunk_id for h in retrieve(stack, flt, "Chinese apples").hits}
    assert max(relevance) == pytest.approx(max(h.relevance for h in fused.hits), abs=1e-4)


def test_hybrid_reranks_with_a_local_cross_encoder(stack, flt, cross_encoder_dir):
    stack.settings = stack.settings.model_copy(update={"reranker_model_path": cross_encoder_dir})
    result = retrieve(stack, flt, "Apple iPhone", top_k=4, rerank_top_n=6, reranker=RerankerKind.FLAG)
    assert result.degraded == [] and len(result.hits) == 4
    relevance = [h.relevance for h in result.hits]
    assert relevance == sorted(relevance, reverse=True) and all(0 < r < 1 for r in relevance)


def test_rrf_mode_moves_what_both_orders_rank_high_to_the_top():
    # fused order is 0,1,2,3; the reranker loves 3 and likes 0: alone it puts 3 first; fused with
    # the fused rank, 0 (first and second) wins over 3 (last and first), and 1 (second and last)
    # edges out 2 (third and third)
    scores = [0.8, 0.1, 0.2, 0.9]
    assert reranked_order(scores, RerankMode.REPLACE) == [3, 0, 2, 1]
    assert reranked_order(scores, RerankMode.RRF) == [0, 3, 1, 2]


def test_hybrid_applies_the_profiles_rerank_mode(stack, flt, endpoint):
    stack.settings = stack.settings.model_copy(update={"reranker_base_url": endpoint, "reranker_model": "e5-cosine"})
    query = "where are apples grown in China"
    fused = retrieve(stack, flt, query, top_k=6)
    blended = retrieve(stack, flt, query, top_k=6, rerank_top_n=6, reranker=RerankerKind.SCORE_API,
                       rerank_mode=RerankMode.RRF)
    replaced = retrieve(stack, flt, query, top_k=6, rerank_top_n=6, reranker=RerankerKind.SCORE_API)
    fused_rank = {h.chunk_id: i for i, h in enumerate(fused.hits)}
    score_rank = {h.chunk_id: i for i, h in enumerate(replaced.hits)}
    expected = sorted(fused_rank, key=lambda c: -(1 / (60 + fused_rank[c]) + 1 / (60 + score_rank[c])))
    assert [h.chunk_id for h in blended.hits] == expected
