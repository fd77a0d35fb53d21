"""The embedded tantivy BM25 index: mixed zh/en matching, filters inside the engine, durability, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sieve.stores.protocols import TextIndex
from sieve.stores.tantivy_text import TantivyTextIndex
from sieve.stores.types import IndexedChunk, ScoredChunk, SearchFilter

KB = SearchFilter("acme", "handbook")


def chunk(chunk_id: str, doc_id: str, text: str, tenant: str = "acme", kb: str = "handbook") -> IndexedChunk:
    return IndexedChunk(chunk_id, doc_id, tenant, kb, text)


CORPUS = [
    chunk("zh", "d-zh", "苹果公司在深圳发布了新款手机，销售额创下季度新高。"),
    chunk("en", "d-en", "The platform team was indexing quarterly reports for the retrieval service."),
    chunk("mix", "d-mix", "向量数据库 supports filtered searches over 知识图谱 entities."),
    chunk("other", "d-other", "Budget meeting notes: travel, hardware and licences. 会议纪要与预算。"),
]


@pytest.fixture
def index(tmp_path: Path):
    ix = TantivyTextIndex(tmp_path / "text")
    yield ix
    ix.close()


def ids(hits: list[ScoredChunk]) -> list[str]:
    return [h.chunk_id for h in hits]


def test_implements_the_text_index_protocol(index):
    assert isinstance(index, TextIndex)


def test_chinese_queries_find_the_chinese_chunk_even_by_a_sub_word(index):
    index.add(CORPUS)
    assert ids(index.search("苹果公司的手机", KB, 3))[0] == "zh"
    # search-mode segmentation indexes 苹果公司 as 苹果 and 公司 too
    assert ids(index.search("公司", KB, 3)) == ["zh"]
    assert ids(index.search("知识图谱", KB, 3)) == ["mix"]


def test_english_queries_match_other_inflections_by_stemming(index):
    index.add(CORPUS)
    assert ids(index.search("index report", KB, 3))[0] == "en"
    assert ids(index.search("Filtering SEARCH", KB, 3))[0] == "mix"
    assert ids(index.search("meetings", KB, 3)) == ["other"]


def test_hits_are_best_first_with_bm25_scores(index):
    index.add([*CORPUS, chunk("en2", "d-en2", "Indexing, indexing and more indexing of reports.")])
    hits = index.search("indexing reports", KB, 5)
    assert {"en", "en2"} == set(ids(hits))
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].doc_id in {"d-en", "d-en2"}


def test_tenants_sharing_a_kb_name_never_see_each_other(index):
    index.add(
        [chunk("a1", "d1", "secret roadmap 路线图", tenant="a"), chunk("b1", "d1", "secret roadmap 路线图", tenant="b")]
    )
    a, b = SearchFilter("a", "handbook"), SearchFilter("b", "handbook")
    assert ids(index.search("roadmap 路线图", a, 10)) == ["a1"]
    assert ids(index.search("roadmap 路线图", b, 10)) == ["b1"]
    assert index.count(a) == index.count(b) == 1
    # the same doc id in tenant b survives a delete in tenant a
    index.delete_documents("a", "handbook", ["d1"])
    assert index.search("roadmap", a, 10) == []
    assert ids(index.search("roadmap", b, 10)) == ["b1"]


def test_knowledge_bases_of_one_tenant_are_separate(index):
    index.add([chunk("h", "d1", "vacation policy"), chunk("w", "d2", "vacation policy", kb="wiki")])
    assert ids(index.search("vacation", KB, 10)) == ["h"]
    assert ids(index.search("vacation", SearchFilter("acme", "wiki"), 10)) == ["w"]


def test_allow_list_limits_results_and_an_empty_one_allows_nothing(index):
    index.add([chunk(f"c{i}", f"d{i}", f"shared keyword 共享 number {i}") for i in range(5)])
    allowed = SearchFilter("acme", "handbook", frozenset({"d1", "d3"}))
    assert sorted(ids(index.search("keyword 共享", allowed, 10))) == ["c1", "c3"]
    assert index.count(allowed) == 2
    nothing = SearchFilter("acme", "handbook", frozenset())
    assert index.search("keyword", nothing, 10) == []
    assert index.count(nothing) == 0


def test_delete_documents_removes_them_from_results_and_count(index):
    index.add([*CORPUS, chunk("en-2", "d-en", "More retrieval reports.")])
    assert index.count(KB) == 5
    index.delete_documents("acme", "handbook", ["d-en", "d-missing"])
    assert index.count(KB) == 3
    assert "en" not in ids(index.search("reports retrieval", KB, 10))
    assert index.search("reports", KB, 10) == []
    assert ids(index.search("苹果", KB, 10)) == ["zh"]


def test_adding_a_chunk_again_replaces_it(index):
    index.add([chunk("c1", "d1", "old wording about llamas")])
    index.add([chunk("c1", "d1", "new wording about alpacas")])
    assert index.count(KB) == 1
    assert index.search("llamas", KB, 10) == []
    assert ids(index.search("alpacas", KB, 10)) == ["c1"]


def test_chunks_survive_close_and_reopen(tmp_path):
    first = TantivyTextIndex(tmp_path / "text")
    first.add(CORPUS)
    first.close()
    first.close()  # closing twice is harmless
    assert not first.health()
    with pytest.raises(RuntimeError):
        first.search("苹果", KB, 3)

    reopened = TantivyTextIndex(tmp_path / "text")
    try:
        assert reopened.health()
        assert reopened.count(KB) == len(CORPUS)
        assert ids(reopened.search("苹果", KB, 3)) == ["zh"]
        assert ids(reopened.search("indexes", KB, 3)) == ["en"]
    finally:
        reopened.close()


def test_a_second_opener_of_the_same_folder_is_refused(index, tmp_path):
    with pytest.raises(RuntimeError, match="already open"):
        TantivyTextIndex(tmp_path / "text")


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced quote',
        "title:retrieval",
        "(report OR",
        "AND",
        "NOT",
        "a AND OR b",
        "",
        "   ",
        "*",
        "report^2~",
        "[1 TO 5]",
        "\\",
        "+-!",
        "苹果:手机)",
        "'; DROP TABLE chunks; --",
        "x" * 10_000,
    ],
)
def test_query_syntax_characters_are_plain_text(index, query):
    index.add(CORPUS)
    hits = index.search(query, KB, 5)
    assert all(isinstance(h, ScoredChunk) for h in hits)


def test_punctuated_queries_still_match_their_words(index):
    index.add(CORPUS)
    assert ids(index.search('retrieval:"service" (platform)', KB, 3))[0] == "en"
    assert index.search("", KB, 3) == []


def test_searches_from_threads_during_an_add_see_consistent_results(index):
    index.add(CORPUS)
    errors: list[BaseException] = []
    seen_counts: list[int] = []
    done = threading.Event()

    def searcher() -> None:
        try:
            while not done.is_set():
                hits = index.search("batch 批次 苹果", KB, 50)
                assert all(h.chunk_id == "zh" or h.chunk_id.startswith("b") for h in hits)
                seen_counts.append(index.count(KB))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for n in range(20):
            index.add([chunk(f"b{n}-{i}", f"batch-{n}", f"batch 批次 {n} item {i}") for i in range(50)])
    finally:
        done.set()
        for t in threads:
            t.join()

    assert errors == []
    assert seen_counts and all(len(CORPUS) <= c <= len(CORPUS) + 1000 for c in seen_counts)
    assert index.count(KB) == len(CORPUS) + 1000
    assert len(index.search("批次", KB, 2000)) == 1000
