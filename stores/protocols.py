"""The protocols each storage role implements; selecting a backend is configuration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .types import IndexedChunk, ScoredChunk, SearchFilter


@runtime_checkable
class TextIndex(Protocol):
    """Full-text index with BM25 scoring (tantivy embedded, OpenSearch in production)."""

    def add(self, chunks: Sequence[IndexedChunk]) -> None: ...

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None: ...

    def set_acl(self, chunks: Sequence[IndexedChunk]) -> None:
        """The chunks carry their documents' new access lists; nothing else about them changes."""
        ...

    def search(self, query: str, flt: SearchFilter, k: int) -> list[ScoredChunk]: ...

    def count(self, flt: SearchFilter) -> int: ...

    def health(self) -> bool: ...

    def close(self) -> None: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Dense vector index (Qdrant Edge embedded, Qdrant server in production)."""

    def add(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray) -> None: ...

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None: ...

    def set_acl(self, chunks: Sequence[IndexedChunk]) -> None: ...

    def search(self, vector: np.ndarray, flt: SearchFilter, k: int) -> list[ScoredChunk]: ...

    def count(self, flt: SearchFilter) -> int: ...

    def health(self) -> bool: ...

    def close(self) -> None: ...
