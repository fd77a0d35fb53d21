"""The OpenSearch text index: the request bodies it sends (no server needed), and a contract suite
that runs its behaviour against a real cluster when SIEVE_OPENSEARCH_URL is set."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

pytest.importorskip("opensearchpy")

from sieve.settings import Settings
from sieve.stores.opensearch_text import (
    OpenSearchTextIndex,
    acl_actions,
    bulk_actions,
    chinese_analysis,
    delete_body,
    index_template,
    knn_body,
    search_body,
)
from sieve.stores.protocols import TextIndex
from sieve.stores.types import IndexedChunk, SearchFilter

OPENSEARCH_URL = os.environ.get("SIEVE_OPENSEARCH_URL")
ACME_HR = SearchFilter("acme", "hr")
SCOPE = [{"term": {"tenant": "acme"}}, {"term": {"kb": "hr"}}]


def chunk(doc: str, text: str, tenant: str = "acme", kb: str = "hr") -> IndexedChunk:
    return IndexedChunk(chunk_id=f"{doc}#0", doc_id=doc, tenant=tenant, kb=kb, text=text)


# --- request bodies ---


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        (["analysis-ik", "analysis-smartcn"], "ik"),
        (["opensearch-analysis-ik"], "ik"),
        (["analysis-icu", "analysis-smartcn"], "smartcn"),
        (["repository-s3", "opensearch-knn"], "jieba"),
        ([], "jieba"),
    ],
)
def test_chinese_analysis_prefers_a_cluster_plugin_and_falls_back_to_jieba(components, expected):
    assert chinese_analysis(components) == expected


def test_template_without_a_plugin_uses_a_whitespace_analyzer_for_jieba_terms():
    template = index_template("sieve-chunks*", "jieba")
    assert template["index_patterns"] == ["sieve-chunks*"]
    body = template["template"]
    props = body["mappings"]["properties"]
    assert body["mappings"]["_meta"] == {"zh_analysis": "jieba"}
    assert {f: props[f]["type"] for f in ("chunk_id", "doc_id", "tenant", "kb")} == dict.fromkeys(
        ("chunk_id", "doc_id", "tenant", "kb"), "keyword"
    )
    assert props["text"] == {"type": "text", "analyzer": "standard"}
    assert props["text_zh"] == {"type": "text", "analyzer": "sieve_pretokenised"}
    analyzer = body["settings"]["analysis"]["analyzer"]["sieve_pretokenised"]
    assert (analyzer["tokenizer"], analyzer["filter"]) == ("whitespace", ["lowercase"])
    assert "embedding" not in props and "index" not in body["settings"]


@pytest.mark.parametrize(
    ("zh", "field"),
    [
        ("ik", {"type": "text", "analyzer": "ik_max_word", "search_analyzer": "ik_smart"}),
        ("smartcn", {"type": "text", "analyzer": "smartcn"}),
    ],
)
def test_template_with_a_plugin_lets_the_cluster_segment_chinese(zh, field):
    body = index_template("p*", zh)["template"]
    assert body["mappings"]["properties"]["text_zh"] == field
    assert "analysis" not in body["settings"]


def test_template_with_knn_adds_a_filterable_cosine_vector_field():
    body = index_template("p*", "jieba", knn_dim=384)["template"]
    assert body["settings"]["index"] == {"knn": True}
    assert body["mappings"]["properties"]["embedding"] == {
        "type": "knn_vector",
        "dimension": 384,
        "method": {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"},
    }


def test_search_scopes_to_tenant_and_kb_with_filter_clauses_not_post_filtering():
    body = search_body("年假政策 leave", ACME_HR, k=5, zh="jieba")
    assert body["size"] == 5 and "post_filter" not in body
    query = body["query"]["bool"]
    assert query["filter"] == SCOPE
    assert query["should"] == [
        {"match": {"text": "年假政策 leave"}},
        {"match": {"text_zh": "年 假 政策 leave"}},  # the jieba terms the chunks were indexed with
    ]
    assert query["minimum_should_match"] == 1  # a filter-only match would return the whole kb


def test_search_with_an_allow_list_adds_a_terms_filter():
    body = search_body("leave", SearchFilter("acme", "hr", frozenset({"d2", "d1"})), k=3, zh="ik")
    assert body["query"]["bool"]["filter"] == [*SCOPE, {"terms": {"doc_id": ["d1", "d2"]}}]
    assert body["query"]["bool"]["should"][1] == {"match": {"text_zh": "leave"}}  # the plugin segments


def test_knn_filters_inside_the_vector_search():
    body = knn_body(np.array([1, 0, 0.5], dtype=np.float32), SearchFilter("acme", "hr", frozenset({"d1"})), k=4)
    knn = body["query"]["knn"]["embedding"]
    assert knn["vector"] == [1.0, 0.0, 0.5] and knn["k"] == 4 and body["size"] == 4
    assert knn["filter"] == {"bool": {"filter": [*SCOPE, {"terms": {"doc_id": ["d1"]}}]}}
    assert "post_filter" not in body


def test_a_callers_readers_filter_bm25_knn_and_counts_inside_the_query():
    hr = SearchFilter("acme", "hr", readers=frozenset({"*", "user:li", "group:hr"}))
    acl = {"terms": {"acl": ["*", "group:hr", "user:li"]}}
    assert search_body("leave", hr, k=3, zh="ik")["query"]["bool"]["filter"] == [*SCOPE, acl]
    body = knn_body(np.array([1, 0, 0], dtype=np.float32), hr, k=2)
    assert body["query"]["knn"]["embedding"]["filter"] == {"bool": {"filter": [*SCOPE, acl]}}
    assert "post_filter" not in body


def test_an_access_list_change_is_a_partial_update_of_the_same_documents():
    ours = IndexedChunk("d1#0", "d1", "acme", "hr", "年假政策", ("group:hr", "user:li"))
    [indexed], [update] = bulk_actions("sieve-chunks", [ours], "jieba"), acl_actions("sieve-chunks", [ours])
    assert indexed["_source"]["acl"] == ["group:hr", "user:li"]
    # the text and its vectors stay: only the access list is sent, to the document the chunk already is
    assert update == {"_op_type": "update", "_index": "sieve-chunks", "_id": indexed["_id"],
                      "doc": {"acl": ["group:hr", "user:li"]}}
    assert index_template("sieve-chunks*", "jieba")["template"]["mappings"]["properties"]["acl"] == {"type": "keyword"}


def test_delete_by_query_is_scoped_to_tenant_kb_and_documents():
    assert delete_body("acme", "hr", ["d2", "d1"]) == {
        "query": {"bool": {"filter": [*SCOPE, {"terms": {"doc_id": ["d1", "d2"]}}]}}
    }


def test_bulk_actions_overwrite_per_tenant_and_carry_jieba_terms():
    ours, theirs = chunk("d1", "年假政策"), chunk("d1", "年假政策", tenant="globex")
    actions = bulk_actions("sieve-chunks", [ours, theirs], "jieba")
    assert [a["_op_type"] for a in actions] == ["index", "index"]  # re-adding replaces
    assert {a["_index"] for a in actions} == {"sieve-chunks"}
    # the same chunk id in two tenants is two documents; the same chunk again is the same one
    assert actions[0]["_id"] != actions[1]["_id"]
    assert actions[0]["_id"] == bulk_actions("sieve-chunks", [ours], "ik")[0]["_id"]
    assert actions[0]["_source"] == {
        "chunk_id": "d1#0",
        "doc_id": "d1",
        "tenant": "acme",
        "kb": "hr",
        "acl": ["*"],
        "text": "年假政策",
        "text_zh": "年 假 政策",
    }
    assert bulk_actions("i", [ours], "smartcn")[0]["_source"]["text_zh"] == "年假政策"


def test_bulk_actions_carry_vectors_and_refuse_a_count_mismatch():
    vectors = np.array([[1, 0], [0, 1]], dtype=np.float32)
    actions = bulk_actions("i", [chunk("a", "x"), chunk("b", "y")], "jieba", vectors)
    assert [a["_source"]["embedding"] for a in actions] == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="vectors"):
        bulk_actions("i", [chunk("a", "x")], "jieba", vectors)


# --- contract: the same behaviour on a real cluster ---

CORPUS = [
    (chunk("leave", "annual leave policy: 25 days a year"), [1, 0, 0, 0]),
    (chunk("expenses", "expense reports are due monthly"), [0, 1, 0, 0]),
    (chunk("leave-zh", "年假政策：每年二十五天带薪休假"), [0, 0, 1, 0]),
    (chunk("leave", "globex confidential leave policy", tenant="globex"), [0, 0, 0, 1]),
    (chunk("merger", "globex merger plans", tenant="globex"), [0, 0, 0, 1]),
    (chunk("handbook", "engineering on-call handbook and leave rota", kb="eng"), [1, 0, 0, 0]),
]


@pytest.fixture
def index():
    if not OPENSEARCH_URL:
        pytest.skip("SIEVE_OPENSEARCH_URL is not set")
    prefix = f"sieve-test-{uuid.uuid4().hex[:8]}"
    idx = OpenSearchTextIndex.from_settings(Settings(opensearch_index_prefix=prefix), knn_dim=4)
    idx.add([c for c, _ in CORPUS], np.array([v for _, v in CORPUS], dtype=np.float32))
    yield idx
    idx.client.indices.delete(index=idx.index, ignore_unavailable=True)
    idx.client.indices.delete_index_template(name=idx.index)
    idx.close()


def ids(hits) -> list[str]:
    return [h.chunk_id for h in hits]


@pytest.mark.contract
def test_contract_search_ranks_matches_within_tenant_and_kb(index):
    assert isinstance(index, TextIndex) and index.health()
    hits = index.search("leave policy", ACME_HR, k=10)
    assert ids(hits)[0] == "leave#0" and "handbook#0" not in ids(hits)
    assert ids(index.search("merger", ACME_HR, k=10)) == []
    assert ids(index.search("merger", SearchFilter("globex", "hr"), k=10)) == ["merger#0"]
    assert [index.count(f) for f in (ACME_HR, SearchFilter("globex", "hr"))] == [3, 2]


@pytest.mark.contract
def test_contract_chinese_query_finds_chinese_chunk(index):
    assert ids(index.search("年假", ACME_HR, k=3))[0] == "leave-zh#0"


@pytest.mark.contract
def test_contract_allow_list_and_empty_allow_list(index):
    only = SearchFilter("acme", "hr", frozenset({"expenses"}))
    assert ids(index.search("leave policy expense", only, k=10)) == ["expenses#0"]
    assert index.count(only) == 1
    nothing = SearchFilter("acme", "hr", frozenset())
    assert index.search("leave", nothing, k=10) == [] and index.count(nothing) == 0


@pytest.mark.contract
def test_contract_delete_is_scoped_and_re_add_replaces(index):
    index.delete_documents("acme", "hr", ["leave"])
    index.delete_documents("acme", "hr", [])
    assert index.count(ACME_HR) == 2
    assert index.count(SearchFilter("globex", "hr", frozenset({"leave"}))) == 1
    index.add([chunk("expenses", "expense reports are due weekly")])
    assert index.count(ACME_HR) == 2
    assert ids(index.search("weekly", ACME_HR, k=3)) == ["expenses#0"]


@pytest.mark.contract
def test_contract_knn_is_filtered_in_the_engine(index):
    hits = index.search_knn(np.array([0, 0, 0, 1], dtype=np.float32), ACME_HR, k=2)
    assert len(hits) == 2 and not {"merger#0"} & set(ids(hits))
    allowed = SearchFilter("acme", "hr", frozenset({"expenses"}))
    assert ids(index.search_knn(np.array([1, 0, 0, 0], dtype=np.float32), allowed, k=3)) == ["expenses#0"]


@pytest.mark.contract
def test_contract_access_lists_filter_in_the_engine_and_change_in_place(index):
    hr = SearchFilter("acme", "hr", readers=frozenset({"*", "group:hr"}))
    assert index.count(hr) == 3  # the default list is the whole tenant
    index.set_acl([IndexedChunk("leave#0", "leave", "acme", "hr", "", ("group:board",))])
    index.client.indices.refresh(index=index.index)
    assert "leave#0" not in ids(index.search("leave policy", hr, k=10)) and index.count(hr) == 2
    assert "leave#0" in ids(index.search("leave policy", ACME_HR, k=10))

