"""The Qdrant-server vector index: behaviour on qdrant-client's local mode (and, when
SIEVE_QDRANT_URL is set, the same tests against a real server), plus the request objects it builds."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from sieve.stores.protocols import VectorIndex
from sieve.stores.qdrant_server_vectors import (
    DENSE,
    QdrantServerVectorIndex,
    collection_name,
    payload_indexes,
    search_filter,
)
from sieve.stores.types import IndexedChunk, SearchFilter

# local mode warns that payload indexes have no effect there; the server honours them
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")

QDRANT_URL = os.environ.get("SIEVE_QDRANT_URL")
DIM = 4
ACME_HR = SearchFilter("acme", "hr")


def chunk(doc: str, text: str, tenant: str = "acme", kb: str = "hr", n: int = 0) -> IndexedChunk:
    return IndexedChunk(chunk_id=f"{doc}#{n}", doc_id=doc, tenant=tenant, kb=kb, text=text)


def vec(*xs: float) -> np.ndarray:
    return np.array([xs], dtype=np.float32)


CORPUS = [
    (chunk("leave", "annual leave policy: 25 days a year"), vec(1, 0, 0, 0)),
    (chunk("expenses", "expense reports are due monthly"), vec(0, 1, 0, 0)),
    (chunk("leave-zh", "年假政策：每年二十五天带薪休假"), vec(0, 0, 1, 0)),
    # another tenant, same kb name, one chunk id in common: never visible to acme, never an overwrite
    (chunk("leave", "globex confidential leave policy", tenant="globex"), vec(0, 0, 0, 1)),
    (chunk("merger", "globex merger plans", tenant="globex"), vec(0, 0, 0, 1)),
    (chunk("handbook", "engineering on-call handbook", kb="eng"), vec(1, 0, 0, 0)),
]


@pytest.fixture(params=["local", pytest.param("server", marks=pytest.mark.contract)])
def make_index(request):
    """Builds indexes on local mode, or on the server at SIEVE_QDRANT_URL under a throwaway prefix."""
    if request.param == "server" and not QDRANT_URL:
        pytest.skip("SIEVE_QDRANT_URL is not set")
    prefix = f"sieve_test_{uuid.uuid4().hex[:8]}_"
    built: list[QdrantServerVectorIndex] = []

    def make(layout: str = "per_kb") -> QdrantServerVectorIndex:
        client = QdrantClient(url=QDRANT_URL) if request.param == "server" else QdrantClient(":memory:")
        index = QdrantServerVectorIndex(client, DIM, layout=layout, prefix=prefix)
        built.append(index)
        return index

    yield make
    for index in built:
        for c in index.client.get_collections().collections:
            if c.name.startswith(prefix):
                index.client.delete_collection(c.name)
        index.close()


def filled(make_index, layout: str = "per_kb") -> QdrantServerVectorIndex:
    index = make_index(layout)
    index.add([c for c, _ in CORPUS], np.vstack([v for _, v in CORPUS]))
    return index


def ids(hits) -> list[str]:
    return [h.chunk_id for h in hits]


# --- behaviour (local mode, and the contract suite on a server) ---


def test_implements_the_vector_index_protocol(make_index):
    assert isinstance(make_index(), VectorIndex)


def test_nearest_chunk_comes_first_with_its_document(make_index):
    hits = filled(make_index).search(vec(0.1, 1, 0, 0), ACME_HR, k=3)
    assert hits[0].chunk_id == "expenses#0" and hits[0].doc_id == "expenses"
    assert hits[0].score > hits[1].score
    assert len(hits) == 3


@pytest.mark.parametrize("layout", ["per_kb", "per_tenant", "shared"])
def test_tenants_and_knowledge_bases_never_see_each_other(make_index, layout):
    index = filled(make_index, layout)
    towards_globex = vec(0, 0, 0, 1)
    acme = index.search(towards_globex, ACME_HR, k=10)
    globex = index.search(towards_globex, SearchFilter("globex", "hr"), k=10)
    eng = index.search(towards_globex, SearchFilter("acme", "eng"), k=10)
    assert sorted(ids(acme)) == ["expenses#0", "leave#0", "leave-zh#0"]
    assert sorted(ids(globex)) == ["leave#0", "merger#0"]
    assert ids(eng) == ["handbook#0"]
    assert [index.count(f) for f in (ACME_HR, SearchFilter("globex", "hr"))] == [3, 2]


def test_allow_list_restricts_results_and_empty_allows_nothing(make_index):
    index = filled(make_index)
    only = SearchFilter("acme", "hr", frozenset({"expenses", "leave-zh"}))
    assert sorted(ids(index.search(vec(1, 0, 0, 0), only, k=10))) == ["expenses#0", "leave-zh#0"]
    assert index.count(only) == 2
    nothing = SearchFilter("acme", "hr", frozenset())
    assert index.search(vec(1, 0, 0, 0), nothing, k=10) == []
    assert index.count(nothing) == 0


def test_delete_removes_only_that_tenants_documents(make_index):
    index = filled(make_index, "shared")
    index.delete_documents("acme", "hr", ["leave"])
    assert sorted(ids(index.search(vec(1, 0, 0, 0), ACME_HR, k=10))) == ["expenses#0", "leave-zh#0"]
    assert index.count(SearchFilter("globex", "hr", frozenset({"leave"}))) == 1
    index.delete_documents("acme", "hr", [])  # an empty list deletes nothing, not everything
    assert index.count(ACME_HR) == 2


def test_re_adding_a_chunk_replaces_it(make_index):
    index = filled(make_index)
    index.add([chunk("leave", "annual leave policy, revised")], vec(0, 0, 0, 1))
    assert index.count(ACME_HR) == 3
    assert index.search(vec(0, 0, 0, 1), ACME_HR, k=1)[0].chunk_id == "leave#0"


def test_unknown_knowledge_base_is_empty_not_an_error(make_index):
    index = filled(make_index)
    assert index.search(vec(1, 0, 0, 0), SearchFilter("acme", "nope"), k=5) == []
    assert index.count(SearchFilter("acme", "nope")) == 0
    index.delete_documents("acme", "nope", ["leave"])
    assert index.health()


def test_vectors_of_the_wrong_shape_are_refused(make_index):
    with pytest.raises(ValueError, match="shape"):
        make_index().add([chunk("a", "x")], np.zeros((1, DIM + 1), dtype=np.float32))


@pytest.mark.contract
def test_snapshot_of_a_knowledge_base(make_index):
    if not QDRANT_URL:
        pytest.skip("snapshots need a Qdrant server (local mode has none)")
    index = filled(make_index)
    name = index.create_snapshot("acme", "hr")
    snapshots = index.client.list_snapshots(index.collection("acme", "hr"))
    assert name in {s.name for s in snapshots}
    index.client.delete_snapshot(index.collection("acme", "hr"), name)


# --- request objects (what local mode cannot check: payload indexes, server-side filtering) ---


def test_filter_for_a_knowledge_base():
    assert search_filter(ACME_HR) == qm.Filter(
        must=[
            qm.FieldCondition(key="tenant", match=qm.MatchValue(value="acme")),
            qm.FieldCondition(key="kb", match=qm.MatchValue(value="hr")),
        ]
    )


def test_filter_with_an_allow_list_matches_any_listed_document():
    flt = search_filter(SearchFilter("acme", "hr", frozenset({"b", "a"})))
    assert flt.must[:2] == search_filter(ACME_HR).must
    assert flt.must[2] == qm.FieldCondition(key="doc_id", match=qm.MatchAny(any=["a", "b"]))
    assert flt.should is None and flt.must_not is None


@pytest.mark.parametrize(
    ("layout", "tenant_field"), [("shared", "tenant"), ("per_tenant", "kb"), ("per_kb", None)]
)
def test_payload_indexes_are_keywords_with_the_partition_field_marked_tenant(layout, tenant_field):
    indexes = payload_indexes(layout)
    assert set(indexes) == {"tenant", "kb", "doc_id", "acl"}
    assert all(p.type == qm.KeywordIndexType.KEYWORD for p in indexes.values())
    assert {f for f, p in indexes.items() if p.is_tenant} == ({tenant_field} if tenant_field else set())


def test_collections_are_cosine_dense_vectors():
    plain = QdrantServerVectorIndex(QdrantClient(":memory:"), 384).collection_config()
    assert plain == {"vectors_config": {DENSE: qm.VectorParams(size=384, distance=qm.Distance.COSINE)}}


def test_collection_names_follow_the_layout_and_never_collide():
    assert collection_name("p_", "shared", "a", "x") == collection_name("p_", "shared", "b", "y") == "p_chunks"
    assert collection_name("p_", "per_tenant", "a", "x") == collection_name("p_", "per_tenant", "a", "y")
    assert collection_name("p_", "per_tenant", "a", "x") != collection_name("p_", "per_tenant", "b", "x")
    # ids that slug to the same text still get their own collection
    assert collection_name("p_", "per_kb", "a b", "x") != collection_name("p_", "per_kb", "a_b", "x")
    assert collection_name("p_", "per_kb", "t", "知识库").startswith("p_t._-")

