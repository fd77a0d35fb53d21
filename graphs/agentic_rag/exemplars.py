"""Exemplar routing: which route's example questions the new question is most similar to."""

from __future__ import annotations

import asyncio

import numpy as np

from sieve.models.guarded_embedder import GuardedEmbedder
from sieve.prompts.route import EXEMPLARS

# exemplar vectors per vector space (an embedder's `name`): one batch, once per process
_cache: dict[str, tuple[list[str], np.ndarray]] = {}


async def _exemplar_matrix(embedder: GuardedEmbedder) -> tuple[list[str], np.ndarray]:
    if embedder.name not in _cache:
        labels = [route for route, texts in EXEMPLARS.items() for _ in texts]
        texts = [text for texts in EXEMPLARS.values() for text in texts]
        # start-up cost, outside any question's budget (and off the event loop); question-to-question
        # similarity: both sides embedded as queries. Through the breaker: an embedder failing now is
        # `EmbedderUnavailable` (routing falls back to its rules) and the matrix is tried again later
        _cache[embedder.name] = (labels, await asyncio.to_thread(embedder.embed_queries, texts))
    return _cache[embedder.name]


async def exemplar_scores(embedder: GuardedEmbedder, question: str, timeout_s: float) -> dict[str, float]:
    """Best cosine between the question and each route's exemplars; `EmbedderUnavailable` past `timeout_s`."""
    labels, matrix = await _exemplar_matrix(embedder)
    sims = matrix @ (await embedder.aembed_queries([question], timeout_s))[0]
    best: dict[str, float] = {}
    for label, sim in zip(labels, sims.tolist()):
        best[label] = max(best.get(label, -1.0), sim)
    return best
