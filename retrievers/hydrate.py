"""The hydrator: fused chunk ids -> hits with their text, location and document, and their relevance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import bindparam, select

from sieve.retrievers.fusion import FusedChunk
from sieve.retrievers.types import Hit
from sieve.stores.embedding_cache import EmbeddingCache, text_hash
from sieve.stores.metadata import Chunk, Document, DocumentStatus
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

# one query by primary keys: a condition on the document's tenant, kb or status lets SQLite's planner walk
# that index (every document of the tenant: 2 ms at 10k documents), so `hydrate` checks them on the rows
_ROWS = (
    select(Chunk.id, Chunk.text, Chunk.ordinal, Chunk.meta, Document.id.label("doc_id"), Document.filename,
           Document.title, Document.source_uri, Document.status, Document.tenant_id, Document.kb_id)
    .join(Document, Document.id == Chunk.doc_id)
    .where(Chunk.id.in_(bindparam("ids", expanding=True)))
)


class Hydrator:
    """Loads what a hit shows from the metadata store; synchronous (retrieval runs it in a thread)."""

    def __init__(self, stack: Stack):
        self.stack = stack

    def hydrate(self, fused: Sequence[FusedChunk], flt: SearchFilter, k: int) -> list[Hit]:
        """The first `k` of `fused` whose document is `ready` in the filter's knowledge base, in order:
        chunks of a document mid-ingest (or deleted meanwhile) are dropped."""
        if not fused:
            return []
        with self.stack.sessions() as session:
            rows = {row.id: row for row in session.connection().execute(_ROWS, {"ids": [f.chunk_id for f in fused]})}
        hits: list[Hit] = []
        for f in fused:
            row = rows.get(f.chunk_id)
            if row is None or row.status != DocumentStatus.READY or (row.tenant_id, row.kb_id) != (flt.tenant, flt.kb):
                continue
            hits.append(
                Hit(
                    chunk_id=f.chunk_id,
                    doc_id=row.doc_id,
                    text=row.text,
                    score=f.score,
                    filename=row.filename,
                    title=row.title,
                    source_uri=row.source_uri,
                    ordinal=row.ordinal,
                    location=row.meta,
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
