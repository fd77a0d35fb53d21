"""The embedder protocol every provider implements, and the tokenizer protocol chunking uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextTokenizer(Protocol):
    """Character spans of the embedding model's tokens (no special tokens): chunks are cut on them."""

    def offsets(self, text: str) -> list[tuple[int, int]]: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors.

    `name` identifies the vector space (cache keys and index compatibility depend on it): two
    providers with the same name must produce interchangeable vectors.
    """

    name: str

    @property
    def dim(self) -> int: ...  # read-only: a remote embedder learns it from its first answer

    @property
    def tokenizer(self) -> TextTokenizer: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
