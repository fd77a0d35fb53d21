"""The `graph` recall path: the query's entities -> N hops over relations -> the chunks linked on the way.

Entities are found in the query by the same rules ingest uses (an LLM call per query would not fit
the path's budget), then matched to stored entities by normalised name and by name vectors.
"""

from __future__ import annotations

from sieve.ingest.extraction import find_entities
from sieve.stores.graph import GraphStore
from sieve.stores.types import ScoredChunk, SearchFilter

MAX_QUERY_ENTITIES = 8


def query_entities(query: str) -> list[str]:
    return [name for name, _ in find_entities(query)][:MAX_QUERY_ENTITIES]


def graph_search(graph: GraphStore, query: str, flt: SearchFilter, hops: int, fanout: int, k: int) -> list[ScoredChunk]:
    """Chunks for `query` best first; empty when it names no entity the knowledge base knows."""
    names = query_entities(query)
    if not names or flt.allows_nothing():
        return []
    return graph.expand(graph.match_entities(names, flt), flt, hops, fanout, k)
