"""The hydrator: fused chunk ids -> hits with their text, location and document, and their relevance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import select

from sieve.retrievers.fusion import FusedChunk
from sieve.retrievers.types import Hit
from sieve.stores.embedding_cache import EmbeddingCache, text_hash
from sieve.stores.metadata import Chunk, Document, DocumentStatus
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter


class Hydrator:
    """Loads what a hit shows from the metadata store; synchronous (retrieval runs it in a thread)."""

    def __init__(self, stack: Stack):
        self.stack = stack

    def hydrate(self, fused: Sequence[FusedChunk], flt: SearchFilter, k: int) -> list[Hit]:
        """The first `k` of `fused` whose document is `ready` in the filter's knowledge base, in order:
        chunks of a document mid-ingest (or deleted meanwhile) are dropped."""
        if not fused:
            return []
        # two primary-key lookups: a join lets SQLite's planner scan every ready document instead
        with self.stack.sessions() as session:
            chunks = {
                row.id: row
                for row in session.execute(
                    select(Chunk.id, Chunk.text, Chunk.ordinal, Chunk.doc_id, Chunk.meta).where(
                        Chunk.id.in_([f.chunk_id for f in fused])
                    )
                )
            }
            docs = {
                row.id: row
                for row in session.execute(
                    select(Document.id, Document.filename, Document.title, Document.source_uri).where(
                        Document.id.in_({c.doc_id for c in chunks.values()}),
                        Document.status == DocumentStatus.READY,
                        Document.tenant_id == flt.tenant,
                        Document.kb_id == flt.kb,
                    )
                )
            }
        hits: list[Hit] = []
        for f in fused:
            chunk = chunks.get(f.chunk_id)
            doc = docs.get(chunk.doc_id) if chunk is not None else None
            if chunk is None or doc is None:
                continue
            hits.append(
                Hit(
                    chunk_id=f.chunk_id,
                    doc_id=doc.id,
                    text=chunk.text,
                    score=f.score,
                    filename=doc.filename,
                    title=doc.title,
                    source_uri=doc.source_uri,
                    ordinal=chunk.ordinal,
                    location=chunk.meta,
                    ranks=f.ranks,
                    path_scores=f.path_scores,
                )
            )
            if len(hits) == k:
                break
        return hits

    def score_relevance(self, hits: Sequence[Hit], query_vector: np.ndarray, cache: EmbeddingCache) -> None:
        """Each hit's relevance: the cosine of query and passage, from the dense score or the passage
        vector ingest cached in the query vector's space (never embedded again here)."""
        missing = [h for h in hits if "dense" not in h.path_scores]
        cached = cache.get_many([text_hash(h.text) for h in missing])
        for hit in hits:
            if "dense" in hit.path_scores:
                hit.relevance = hit.path_scores["dense"]
            else:
                vec = cached.get(text_hash(hit.text))
                hit.relevance = float(vec @ query_vector) if vec is not None else None
