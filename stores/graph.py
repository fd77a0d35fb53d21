"""The graph role: entities, relations and entity-chunk links, behind one small protocol.

Backends: SQL tables in the metadata DB (`graph_sql.py`, embedded default) and NebulaGraph
(`nebula_graph.py`). Both keep entity-name vectors in a vector index through `EntityNames`, so a query
can start from entities whose names are close to the ones it mentions.

Entity ids are derived from (tenant, kb, normalised name): every backend and every process computes the
same id for the same entity, upserts are idempotent, and a vector left behind by a crash between two
stores is overwritten when the entity comes back (and never matches a row while it is gone).
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args, runtime_checkable

import numpy as np

from sieve.stores.protocols import VectorIndex
from sieve.stores.types import IndexedChunk, ScoredChunk, SearchFilter

EntityType = Literal["person", "place", "organization", "other"]
ENTITY_TYPES: tuple[str, ...] = get_args(EntityType)

# legal-form suffixes name the same organisation: 星河科技有限公司 = 星河科技, Apple Inc. = Apple
_ZH_LEGAL = re.compile(r"(股份有限公司|有限责任公司|有限公司|公司)$")
_EN_LEGAL = re.compile(r"[\s,]+(inc|corp|corporation|ltd|llc|co|plc|gmbh)\.?$")
_SPACES = re.compile(r"\s+")


def normalise_name(name: str) -> str:
    """The key two mentions of one entity share: NFKC, lower case, single spaces, no legal form."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip(" \t\"'“”‘’《》()（）.,;:").lower()
    text = text.removeprefix("the ")
    for pattern in (_EN_LEGAL, _ZH_LEGAL):
        stripped = pattern.sub("", text)
        if len(stripped) >= 2:
            text = stripped
    return text


def entity_id(tenant: str, kb: str, name: str) -> str:
    """32 hex characters, stable across processes and backends (a valid Qdrant point id)."""
    key = "\x1f".join((tenant, kb, normalise_name(name)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Triple:
    """One extracted fact: `head --relation--> tail`, weight in (0, 1] (how sure the extractor is)."""

    head: str
    head_type: str
    relation: str
    tail: str
    tail_type: str
    weight: float = 1.0


@dataclass(frozen=True)
class ChunkTriples:
    """The triples extracted from one chunk; their heads and tails are the chunk's linked entities."""

    chunk_id: str
    doc_id: str
    triples: Sequence[Triple]


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    type: str


@dataclass(frozen=True)
class Edge:
    """A stored relation as `graph show` prints it; `hop` is how far its far end is from the start."""

    head: str
    relation: str
    tail: str
    weight: float
    chunk_id: str
    doc_id: str
    hop: int


@dataclass
class Neighbourhood:
    """An entity, the relations within N hops of it, and the chunks linked to it."""

    entity: Entity
    edges: list[Edge] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)


@runtime_checkable
class GraphStore(Protocol):
    """Knowledge graph of a tenant's knowledge bases; every call is scoped by tenant and KB inside the engine."""

    def add(self, tenant: str, kb: str, extracted: Sequence[ChunkTriples]) -> int:
        """Upserts entities, relations and entity-chunk links; returns how many relations were stored."""
        ...

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        """Removes the documents' relations and links, and every entity left without a linked chunk."""
        ...

    def linked_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> set[str]:
        """Those of the documents that have graph entries (some chunk of theirs links an entity)."""
        ...

    def match_entities(self, names: Sequence[str], flt: SearchFilter) -> dict[str, float]:
        """Entity id -> similarity (1.0 for the same normalised name) for names a query mentions."""
        ...

    def expand(
        self, seeds: Mapping[str, float], flt: SearchFilter, hops: int, fanout: int, k: int
    ) -> list[ScoredChunk]:
        """Chunks linked to the seeds or to entities up to `hops` relations away, best first.

        A walk's score is the seed's similarity times the weights of the relations it follows, halved
        at every hop; each entity follows at most `fanout` of its strongest relations per hop, so hubs
        cannot blow the walk up. A chunk scores the sum of the walks that pass through it.
        """
        ...

    def neighbourhood(self, name: str, flt: SearchFilter, hops: int, fanout: int) -> Neighbourhood | None: ...

    def count(self, flt: SearchFilter) -> tuple[int, int]:
        """(entities, relations) of one knowledge base."""
        ...

    def has_entities(self, tenant: str, kb: str) -> bool:
        """Whether the knowledge base has any entity (a lookup of one, not a count)."""
        ...

    def health(self) -> bool: ...

    def close(self) -> None: ...


class EntityNames:
    """Entity-name vectors, one point per entity (point chunk_id = doc_id = entity id).

    Using the entity id as the point's doc id lets the vector index's delete-by-document remove
    entities by id. Names are embedded as passages on both sides: matching a name to a name is
    symmetric, and with e5 it puts the same name at cosine 1.0 where query-vs-passage gives about 0.94.
    """

    def __init__(
        self,
        open_index: Callable[[], VectorIndex],
        embed: Callable[[list[str]], np.ndarray],
        min_similarity: float,
        neighbours: int = 3,
    ):
        self._open_index = open_index
        self._embed = embed
        self._index: VectorIndex | None = None
        self._lock = threading.Lock()
        self.min_similarity = min_similarity
        self.neighbours = neighbours

    @property
    def index(self) -> VectorIndex:
        with self._lock:  # opened on first use: deleting documents of a KB without a graph stays cheap
            if self._index is None:
                self._index = self._open_index()
            return self._index

    def add(self, tenant: str, kb: str, entities: Sequence[Entity]) -> None:
        if entities:
            points = [IndexedChunk(e.id, e.id, tenant, kb, e.name) for e in entities]
            self.index.add(points, self._embed([e.name for e in entities]))

    def delete(self, tenant: str, kb: str, entity_ids: Sequence[str]) -> None:
        if entity_ids:
            self.index.delete_documents(tenant, kb, entity_ids)

    def similar(self, names: Sequence[str], flt: SearchFilter) -> dict[str, float]:
        """Entity id -> similarity in (0, 1] for stored names at least `min_similarity` close to one of `names`.

        The cosine is rescaled from [min_similarity, 1] to [0, 1]: small multilingual embedders put
        different names close (e5-small: 杭州/浙江省 0.96, BRCA1/BRCA2 0.98), so only near-identical
        names may seed a walk with much weight.
        """
        if not names:
            return {}
        scope = SearchFilter(flt.tenant, flt.kb)  # the allow-list names documents, not entities
        found: dict[str, float] = {}
        for vector in self._embed(list(names)):
            for hit in self.index.search(vector, scope, self.neighbours):
                if hit.score >= self.min_similarity:
                    score = (min(hit.score, 1.0) - self.min_similarity) / max(1e-6, 1.0 - self.min_similarity)
                    found[hit.chunk_id] = max(found.get(hit.chunk_id, 0.0), score)
        return found

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None


def seed_scores(names: Sequence[str], flt: SearchFilter, names_index: EntityNames) -> dict[str, float]:
    """Candidate seeds for `match_entities`: exact normalised names at 1.0, similar names at their cosine.

    Ids of exact names are computed, not looked up: a backend keeps only ids it actually stores.
    """
    seeds = names_index.similar(names, flt)
    for name in names:
        seeds[entity_id(flt.tenant, flt.kb, name)] = 1.0
    return seeds


def entities_of(tenant: str, kb: str, extracted: Sequence[ChunkTriples]) -> dict[str, Entity]:
    """Distinct entities of a batch by id; the first surface form and type seen win."""
    found: dict[str, Entity] = {}
    for chunk in extracted:
        for t in chunk.triples:
            for name, kind in ((t.head, t.head_type), (t.tail, t.tail_type)):
                eid = entity_id(tenant, kb, name)
                if eid not in found:
                    found[eid] = Entity(eid, name.strip(), kind if kind in ENTITY_TYPES else "other")
    return found
