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
