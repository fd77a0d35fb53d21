"""The SQL graph store on SQLite and PostgreSQL: N-hop walks, the per-hop fan-out cap, filters, purge."""

from __future__ import annotations

import pytest
from postgres import on_sqlite_and_postgres

from sieve.stores.graph import ChunkTriples, Triple
from sieve.stores.types import SearchFilter

pytestmark = [pytest.mark.integration, on_sqlite_and_postgres]


def fact(head: str, relation: str, tail: str, weight: float = 1.0) -> Triple:
    return Triple(head, "other", relation, tail, "other", weight)


@pytest.fixture
def chain(stack):
    """a -> b -> c -> d, one relation per document, plus a hub h with 60 spokes of rising weight."""
    graph = stack.graph
    graph.add("t1", "kb", [
        ChunkTriples("c-ab", "d-ab", [fact("Alpha", "knows", "Bravo")]),
        ChunkTriples("c-bc", "d-bc", [fact("Bravo", "knows", "Charlie")]),
        ChunkTriples("c-cd", "d-cd", [fact("Charlie", "knows", "Delta")]),
        ChunkTriples("c-ah", "d-ah", [fact("Alpha", "joined", "Hub", 0.2)]),
    ])
    graph.add("t1", "kb", [
        ChunkTriples(f"c-s{i:02d}", f"d-s{i:02d}", [fact("Hub", "has", f"Spoke {i:02d}", (i + 1) / 60)])
        for i in range(60)
    ])
    return graph, SearchFilter("t1", "kb")


def chunks(graph, flt, names, hops=2, fanout=20, k=100) -> list[str]:
    return [c.chunk_id for c in graph.expand(graph.match_entities(names, flt), flt, hops, fanout, k)]


def test_walks_go_as_many_hops_as_asked_and_score_nearer_chunks_higher(chain):
    graph, flt = chain
    assert chunks(graph, flt, ["Delta"], hops=1) == ["c-cd"]
    assert chunks(graph, flt, ["Delta"], hops=2) == ["c-cd", "c-bc"]
    assert chunks(graph, flt, ["Delta"], hops=3) == ["c-cd", "c-bc", "c-ab"]
    assert chunks(graph, flt, ["Delta"], hops=4)[3] == "c-ah"


def test_a_hub_follows_only_its_strongest_relations(chain):
    graph, flt = chain
    spokes = [c for c in chunks(graph, flt, ["Hub"], hops=1, fanout=5) if c.startswith("c-s")]
    assert spokes == ["c-s59", "c-s58", "c-s57", "c-s56", "c-s55"]
    # reached through Alpha, the hub again expands into its 5 strongest spokes only
    through = chunks(graph, flt, ["Alpha"], hops=2, fanout=5)
    assert sorted(c for c in through if c.startswith("c-s")) == ["c-s55", "c-s56", "c-s57", "c-s58", "c-s59"]


def test_the_document_allow_list_and_the_scope_apply_inside_the_walk(chain):
    graph, flt = chain
    allowed = SearchFilter("t1", "kb", frozenset({"d-cd", "d-ab"}))
    # Bravo-Charlie's document is not allowed, so Alpha's chunk is out of reach from Delta
    assert chunks(graph, allowed, ["Delta"], hops=3) == ["c-cd"]
    assert chunks(graph, SearchFilter("t1", "kb", frozenset()), ["Delta"]) == []
    assert chunks(graph, SearchFilter("t1", "other-kb"), ["Delta"]) == []
    assert chunks(graph, SearchFilter("t2", "kb"), ["Delta"]) == []


def test_purging_documents_drops_entities_without_chunks(chain):
    graph, flt = chain
    assert graph.count(flt) == (65, 64)
    graph.delete_documents("t1", "kb", ["d-cd"])
    assert graph.count(flt) == (64, 63)  # Delta had no other chunk; Charlie keeps Bravo's
    assert graph.match_entities(["Delta"], flt) == {}
    assert graph.names.index.count(flt) == 64
    assert chunks(graph, flt, ["Charlie"], hops=1) == ["c-bc"]
    shown = graph.neighbourhood("Bravo", flt, hops=2, fanout=20)
    assert [(e.head, e.tail, e.hop) for e in shown.edges] == [
        ("Alpha", "Bravo", 1), ("Bravo", "Charlie", 1), ("Alpha", "Hub", 2)]
    assert shown.chunk_ids == ["c-ab", "c-bc"]
