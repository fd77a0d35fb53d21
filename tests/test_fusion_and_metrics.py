"""Fusion modes and ranking metrics: the arithmetic every benchmark number rests on."""

import math

import pytest

from sieve.evals.metrics import dedupe, hit_at, mrr_at, ndcg_at, percentile, recall_at
from sieve.retrievers.fusion import FusionMode, FusionNorm, fuse
from sieve.stores.types import ScoredChunk


def chunks(*ids_scores):
    return [ScoredChunk(cid, f"doc-{cid}", score) for cid, score in ids_scores]


def test_rrf_rewards_agreement_between_paths():
    fused = fuse({"bm25": chunks(("a", 9.0), ("b", 5.0)), "dense": chunks(("b", 0.9), ("c", 0.8))}, FusionMode.RRF)
    assert [f.chunk_id for f in fused] == ["b", "a", "c"]
    b = fused[0]
    assert b.ranks == {"bm25": 2, "dense": 1}
    assert b.score == pytest.approx(1 / 62 + 1 / 61)


def test_rrf_weights_shift_the_order():
    results = {"bm25": chunks(("a", 9.0)), "dense": chunks(("c", 0.8))}
    assert fuse(results, FusionMode.RRF, {"dense": 2.0})[0].chunk_id == "c"
    assert fuse(results, FusionMode.RRF, {"bm25": 2.0})[0].chunk_id == "a"


def test_weighted_fusion_normalises_each_path():
    # raw BM25 scores are ~100x the cosines; normalisation keeps them from drowning dense
    fused = fuse(
        {"bm25": chunks(("a", 30.0), ("b", 10.0)), "dense": chunks(("b", 0.9), ("a", 0.1))},
        FusionMode.WEIGHTED,
        {"bm25": 1.0, "dense": 1.5},
    )
    assert [f.chunk_id for f in fused] == ["b", "a"]
    # each path's lowest hit sits one average gap above a chunk it did not return (a third of the way up
    # with two hits): b = 1/3 + 1.5 * 1, a = 1 + 1.5 * 1/3
    assert fused[0].score == pytest.approx(1 / 3 + 1.5)
    assert fused[1].score == pytest.approx(1.5)


def test_zscore_and_minmax_weigh_the_paths_differently():
    bm25 = chunks(("a", 30.0), ("b", 12.0), ("c", 11.0), ("d", 10.0))
    dense = chunks(("b", 0.80), ("c", 0.79), ("a", 0.60), ("d", 0.59))
    minmax = fuse({"bm25": bm25, "dense": dense}, FusionMode.WEIGHTED, norm=FusionNorm.MINMAX)
    zscore = fuse({"bm25": bm25, "dense": dense}, FusionMode.WEIGHTED, norm=FusionNorm.ZSCORE)
    # min-max: dense's near-tie at the top spans its whole range, so b wins; z-scores: a stands out in BM25
    assert [f.chunk_id for f in minmax][:2] == ["b", "a"]
    assert [f.chunk_id for f in zscore][:2] == ["a", "b"]
    # the worst candidate of both paths comes last under either scale, yet still counts for being returned
    assert minmax[-1].chunk_id == zscore[-1].chunk_id == "d" and minmax[-1].score > 0 and zscore[-1].score > 0


def test_a_chunk_one_path_missed_counts_as_that_paths_lowest():
    # x and y tie in BM25; dense returned y (below its mean), not x. Read as a z-score of 0 (the mean),
    # the missing score would lift x above y
    fused = fuse({"bm25": chunks(("a", 5.0), ("x", 3.0), ("y", 3.0)),
                  "dense": chunks(("a", 0.9), ("b", 0.85), ("y", 0.5), ("c", 0.1))},
                 FusionMode.WEIGHTED, norm=FusionNorm.ZSCORE)
    order = [f.chunk_id for f in fused]
    assert order.index("y") < order.index("x")


def test_fusion_of_nothing_is_empty():
    assert fuse({}, FusionMode.RRF) == []
    assert fuse({"bm25": []}, FusionMode.WEIGHTED) == []


def test_metrics_on_a_known_ranking():
    ranked = ["x", "a", "y", "b"]
    rel = {"a": 1, "b": 2}
    assert hit_at(ranked, rel, 1) == 0.0 and hit_at(ranked, rel, 2) == 1.0
    assert mrr_at(ranked, rel, 10) == 0.5
    dcg = 1 / math.log2(3) + 2 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert recall_at(ranked, rel, 2) == 0.5 and recall_at(ranked, rel, 100) == 1.0
    assert ndcg_at(ranked, {}, 10) == 0.0


def test_dedupe_keeps_each_document_at_its_best_rank():
    assert dedupe(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([], 95) == 0.0
