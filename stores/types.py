"""Values that cross every store boundary: the search filter, indexed chunks and scored hits."""

from __future__ import annotations

from dataclasses import dataclass

from sieve.errors import Conflict


@dataclass(frozen=True)
class SearchFilter:
    """What a search may see. Backends apply it inside the engine, never by post-filtering.

    `doc_ids` is an optional allow-list (from NL2SQL); `None` means every document of the
    knowledge base, an empty set means nothing. `readers` are the caller's access-list entries
    (`sieve.stores.acl`): a chunk matches when its document's access list shares one of them; `None`
    (a tenant-wide key, `--dev`) reads every document of the tenant.
    """

    tenant: str
    kb: str
    doc_ids: frozenset[str] | None = None
    readers: frozenset[str] | None = None

    def allows_nothing(self) -> bool:
        return (self.doc_ids is not None and not self.doc_ids) or (self.readers is not None and not self.readers)


@dataclass(frozen=True)
class IndexedChunk:
    """One chunk as the text and vector indexes store it."""

    chunk_id: str
    doc_id: str
    tenant: str
    kb: str
    text: str
    # the document's access-list entries (`sieve.stores.acl`); the default is the whole tenant
    acl: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk id returned by one recall path with that path's score (higher is better)."""

    chunk_id: str
    doc_id: str
    score: float


class EngineBusy(Conflict, RuntimeError):
    """An embedded engine (tantivy, Qdrant Edge) is already open in another process: it has one owner."""
