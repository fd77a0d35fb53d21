"""Passage vectors cached by (embedder name, text hash) in the metadata DB."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from more_itertools import chunked
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sieve.models.embedding import Embedder
from sieve.stores.metadata import EmbeddingCacheEntry


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Unchanged chunk text is never embedded twice, whichever document it came from."""

    _LOOKUP_BATCH = 500  # keeps IN (...) lists under SQLite's variable limit

    def __init__(self, sessions: sessionmaker[Session], model: str):
        self._sessions = sessions
        self._model = model

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._sessions() as session:
            for batch in chunked(unique, self._LOOKUP_BATCH):
                rows = session.execute(
                    select(EmbeddingCacheEntry.text_hash, EmbeddingCacheEntry.vector).where(
                        EmbeddingCacheEntry.model == self._model,
                        EmbeddingCacheEntry.text_hash.in_(batch),
                    )
                )
                for h, blob in rows:
                    found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        with self._sessions.begin() as session:
            existing = set(self.get_many(list(vectors)))
            session.add_all(
                EmbeddingCacheEntry(model=self._model, text_hash=h, vector=np.asarray(v, np.float32).tobytes())
                for h, v in vectors.items()
                if h not in existing
            )


def embed_passages_cached(
    embedder: Embedder,
    cache: EmbeddingCache,
    texts: Sequence[str],
    batch_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts` in order, embedding only cache misses. Returns (vectors, number embedded)."""
    hashes = [text_hash(t) for t in texts]
    known = cache.get_many(hashes)
    missing = list(dict.fromkeys(h for h in hashes if h not in known))
    text_of = dict(zip(hashes, texts))
    occurrences = Counter(hashes)
    for batch in chunked(missing, batch_size):
        vectors = embedder.embed_passages([text_of[h] for h in batch])
        fresh = dict(zip(batch, vectors))
        cache.put_many(fresh)
        known.update(fresh)
        if on_progress:
            on_progress(sum(occurrences[h] for h in batch))
    out = np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, embedder.dim), np.float32)
    return out, len(missing)
