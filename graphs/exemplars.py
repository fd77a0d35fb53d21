"""Exemplar routing: which route's example questions the new question is most similar to."""

from __future__ import annotations

import asyncio

import numpy as np

from sieve.models.embedding import Embedder
from sieve.prompts.route import EXEMPLARS

# exemplar vectors per embedder instance: embedding them costs one batch, once per process
_cache: dict[int, tuple[list[str], np.ndarray]] = {}


def _exemplar_matrix(embedder: Embedder) -> tuple[list[str], np.ndarray]:
    if id(embedder) not in _cache:
        labels = [route for route, texts in EXEMPLARS.items() for _ in texts]
        texts = [text for texts in EXEMPLARS.values() for text in texts]
        # question-to-question similarity: both sides embedded as queries
        _cache[id(embedder)] = (labels, embedder.embed_queries(texts))
    return _cache[id(embedder)]


async def exemplar_scores(embedder: Embedder, question: str) -> dict[str, float]:
    """Best cosine between the question and each route's exemplars."""

    def score() -> dict[str, float]:
        labels, matrix = _exemplar_matrix(embedder)
        sims = matrix @ embedder.embed_queries([question])[0]
        best: dict[str, float] = {}
        for label, sim in zip(labels, sims.tolist()):
            best[label] = max(best.get(label, -1.0), sim)
        return best

    # embedders are synchronous and CPU-bound: keep the event loop free
    return await asyncio.to_thread(score)
