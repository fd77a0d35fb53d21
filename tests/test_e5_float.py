"""The float transformers multilingual-e5-small (the embedder fine-tuning's start) agrees with the ONNX fast path."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.models.e5_onnx import E5OnnxEmbedder

pytest.importorskip("transformers")


def test_the_dequantised_float_model_embeds_as_the_onnx_path(embedder):
    from sieve.models.e5_float import float_e5, mean_pooled

    if not isinstance(embedder, E5OnnxEmbedder):
        pytest.fail(f"the default embedder is {type(embedder).__name__}, not the ONNX fast path")
    texts = ["how much protein should a female eat", "苹果公司发布了新款手机。",
             "Positions past the first window: " + "the cell divides and grows. " * 40]
    cosines = (mean_pooled(float_e5(), texts) * embedder.embed_passages(texts)).sum(axis=1)
    # the ONNX path runs the same weights in int8: near-identical, not equal
    assert np.all(cosines > 0.995), cosines


def test_fine_tuned_weights_go_through_the_fast_paths_int8_conversion(embedder, tmp_path):
    import torch

    from sieve.models.e5_float import TunedE5File, float_e5
    from sieve.models.e5_onnx import write_onnx

    texts = ["how much protein should a female eat", "苹果公司发布了新款手机。"]
    model = float_e5()
    write_onnx(TunedE5File(model.state_dict()), tmp_path / "same.onnx")
    same = E5OnnxEmbedder(tmp_path, model_path=tmp_path / "same.onnx").embed_passages(texts)
    # unchanged weights round-trip to the very graph the fast path converts
    assert np.allclose(same, embedder.embed_passages(texts), atol=1e-5)

    with torch.no_grad():
        model.encoder.layer[11].output.LayerNorm.bias[:64].add_(0.5)  # what training would change
    write_onnx(TunedE5File(model.state_dict()), tmp_path / "tuned.onnx")
    tuned = E5OnnxEmbedder(tmp_path, model_path=tmp_path / "tuned.onnx").embed_passages(texts)
    assert not np.allclose(tuned, same, atol=1e-3)
