"""The NebulaGraph adapter: the nGQL it builds (pure functions), and a contract suite against a real graphd.

The contract suite runs only when SIEVE_NEBULA_ADDRESS (host:port) is set, e.g. against the official
docker-compose cluster; it uses its own space so it never touches data.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from sieve.stores.graph import ChunkTriples, EntityNames, Triple, entity_id
from sieve.stores.nebula_graph import (
    any_entity_query,
    count_query,
    delete_edges_statement,
    doc_edges_query,
    follow,
    hop_query,
    linked_docs_query,
    links_query,
    quote,
    rank,
    schema_statements,
    upsert_statements,
)
from sieve.stores.types import SearchFilter


def test_strings_are_escaped_so_names_cannot_break_out_of_a_literal():
    assert quote('Acme "Labs"\\ \n1') == '"Acme \\"Labs\\"\\\\ \\n1"'
    [entities, *_] = upsert_statements("t1", "kb", [ChunkTriples("c1", "d1", [
        Triple('x"); DROP SPACE sieve; ("', "other", "r", "Bob", "person")])])
    assert '"x\\"); DROP SPACE sieve; (\\""' in entities


def test_schema_creates_a_space_keyed_by_our_entity_ids_with_scoped_indexes():
    statements = schema_statements("sieve")
    assert statements[0].startswith("CREATE SPACE IF NOT EXISTS `sieve`") and "FIXED_STRING(32)" in statements[0]
    joined = "\n".join(statements)
    for needle in ("TAG IF NOT EXISTS entity(", "TAG IF NOT EXISTS chunk(", "EDGE IF NOT EXISTS relation(",
                   "EDGE IF NOT EXISTS mentions(", "ON relation(tenant(64), kb(32), doc_id(32))"):
        assert needle in joined
    assert all(s.startswith("USE `sieve`;") for s in statements[1:])


def test_upserts_keep_first_names_and_rank_relations_by_chunk():
    batch = [
        ChunkTriples("c1", "d1", [Triple("张伟", "person", "工作", "星河科技", "organization", 1.0)]),
        ChunkTriples("c2", "d2", [Triple("张伟", "person", "工作", "星河科技", "organization", 0.5)]),
    ]
    vertices, chunks, relations, mentions = upsert_statements("t1", "kb", batch)
    zhang, xinghe = entity_id("t1", "kb", "张伟"), entity_id("t1", "kb", "星河科技")
    assert vertices.startswith("INSERT VERTEX IF NOT EXISTS entity(tenant, kb, name, type, norm) VALUES ")
    assert f'"{zhang}":("t1", "kb", "张伟", "person", "张伟")' in vertices
    assert chunks == 'INSERT VERTEX chunk(tenant, kb, doc_id) VALUES "c1":("t1", "kb", "d1"), "c2":("t1", "kb", "d2")'
    # the same pair stated in two chunks is two edges, told apart by rank
    assert f'"{zhang}"->"{xinghe}"@{rank("c1", "工作")}:("t1", "kb", "工作", 1.0, "c1", "d1")' in relations
    assert f'"{zhang}"->"{xinghe}"@{rank("c2", "工作")}:("t1", "kb", "工作", 0.5, "c2", "d2")' in relations
    assert mentions.count("->") == 4 and f'"{zhang}"->"c2"@0:("t1", "kb", "d2", 0.5)' in mentions


def test_traversals_filter_tenant_kb_and_allow_list_inside_graphd():
    flt = SearchFilter("t1", "kb", frozenset({"d2", "d1"}))
    hop = hop_query(["e1", "e2"], flt)
    assert hop.startswith('GO 1 STEP FROM "e1", "e2" OVER relation BIDIRECT WHERE ')
    assert ('properties(edge).tenant == "t1" AND properties(edge).kb == "kb" '
            'AND properties(edge).doc_id IN ["d1", "d2"]') in hop
    assert "YIELD id($^) AS origin, src(edge) AS head, dst(edge) AS tail, rank(edge) AS rank" in hop
    links = links_query(["e1"], SearchFilter("t2", "kb"))
    assert 'OVER mentions WHERE properties(edge).tenant == "t2" AND properties(edge).kb == "kb" YIELD' in links
    assert "doc_id IN" not in links


def test_deletes_and_counts_go_through_the_scoped_indexes():
    lookup = doc_edges_query("relation", "t1", "kb", ["d1", "d2"])
    assert lookup == ('LOOKUP ON relation WHERE relation.tenant == "t1" AND relation.kb == "kb" AND '
                      '(relation.doc_id == "d1" OR relation.doc_id == "d2") YIELD src(edge) AS src, dst(edge) AS dst, '
                      'rank(edge) AS rank')
    assert delete_edges_statement("mentions", [("e1", "c1", 0), ("e2", "c1", 0)]) == \
        'DELETE EDGE mentions "e1"->"c1"@0, "e2"->"c1"@0'
    assert linked_docs_query("t1", "kb", ["d1", "d2"]) == (
        'LOOKUP ON mentions WHERE mentions.tenant == "t1" AND mentions.kb == "kb" AND '
        '(mentions.doc_id == "d1" OR mentions.doc_id == "d2") YIELD properties(edge).doc_id AS doc_id '
        '| YIELD DISTINCT $-.doc_id AS doc_id')
    assert any_entity_query("t1", "kb") == (
        'LOOKUP ON entity WHERE entity.tenant == "t1" AND entity.kb == "kb" YIELD id(vertex) AS x | LIMIT 1')
    assert count_query("entity", "t1", "kb") == (
        'LOOKUP ON entity WHERE entity.tenant == "t1" AND entity.kb == "kb" YIELD id(vertex) AS x | YIELD COUNT(*) AS n')


def test_each_hop_follows_an_entitys_strongest_relations_but_never_straight_back():
    rows = [{"origin": "hub", "head": "hub", "tail": f"s{i}", "rank": i, "weight": i / 10, "relation": "r",
             "chunk_id": f"c{i}", "doc_id": "d"} for i in range(1, 10)]
    steps = follow(rows, {"hub": 1.0}, 3, {"hub": ("hub", "s9", 9)})
    assert [s["to"] for s in steps] == ["s8", "s7", "s6"]
    assert steps[0]["score"] == pytest.approx(0.8 * 0.5)


@pytest.fixture
def nebula(tmp_path):
    address = os.environ.get("SIEVE_NEBULA_ADDRESS")
    if not address:
        pytest.skip("SIEVE_NEBULA_ADDRESS is not set")
    pytest.importorskip("nebula3", reason="the `nebula` extra is not installed")
    from sieve.settings import Settings
    from sieve.stores.nebula_graph import NebulaGraphStore
    from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex

    def embed(texts: list[str]) -> np.ndarray:  # one direction per name: only identical names are similar
        rows = np.array([[hash(t) % 997 + 1, hash(t) % 991 + 1, 1.0, 0.0] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    names = EntityNames(lambda: QdrantEdgeVectorIndex(tmp_path / "names", 4), embed, 0.999)
    settings = Settings(home=tmp_path, nebula_address=address, nebula_space=f"sieve_test_{uuid.uuid4().hex[:8]}")
    store = NebulaGraphStore.from_settings(settings, names)
    yield store
    store._run(f"DROP SPACE IF EXISTS `{settings.nebula_space}`", in_space=False)
    store.close()


@pytest.mark.contract
def test_contract_walk_isolation_and_purge(nebula):
    fact = lambda h, t, w=1.0: Triple(h, "other", "knows", t, "other", w)  # noqa: E731
    nebula.add("t1", "kb", [ChunkTriples("c-ab", "d-ab", [fact("Alpha", "Bravo")]),
                            ChunkTriples("c-bc", "d-bc", [fact("Bravo", "Charlie")])])
    nebula.add("t2", "kb", [ChunkTriples("x-ab", "x-ab", [fact("Alpha", "Zulu")])])
    t1, t2 = SearchFilter("t1", "kb"), SearchFilter("t2", "kb")
    seeds = nebula.match_entities(["Alpha"], t1)
    assert seeds == {entity_id("t1", "kb", "Alpha"): 1.0}
    assert [c.chunk_id for c in nebula.expand(seeds, t1, 2, 20, 10)] == ["c-ab", "c-bc"]
    assert [c.chunk_id for c in nebula.expand(seeds, t1, 1, 20, 10)] == ["c-ab"]
    assert nebula.expand(seeds, t2, 2, 20, 10) == []
    assert [c.chunk_id for c in nebula.expand(nebula.match_entities(["Alpha"], t2), t2, 2, 20, 10)] == ["x-ab"]
    assert nebula.count(t1) == (3, 2)
    shown = nebula.neighbourhood("Alpha", t1, 2, 20)
    assert [(e.head, e.tail, e.hop) for e in shown.edges] == [("Alpha", "Bravo", 1), ("Bravo", "Charlie", 2)]

    assert nebula.linked_documents("t1", "kb", ["d-ab", "d-bc", "x-ab", "none"]) == {"d-ab", "d-bc"}
    assert nebula.has_entities("t1", "kb") and not nebula.has_entities("t3", "kb")

    nebula.delete_documents("t1", "kb", ["d-bc"])
    assert nebula.count(t1) == (2, 1)
    assert nebula.linked_documents("t1", "kb", ["d-ab", "d-bc"]) == {"d-ab"}
    assert nebula.match_entities(["Charlie"], t1) == {}
    assert [c.chunk_id for c in nebula.expand(seeds, t1, 2, 20, 10)] == ["c-ab"]
