"""The graph recall path end to end on the real stack: multi-hop recall, tenant isolation, deletes, re-indexing.

`kg_corpus/` is a small company wiki: 14 documents, among them a staff profile (张伟 works at 星河科技),
the company page (星河科技's headquarters are in 杭州) and a dozen distractors about other companies'
headquarters, 杭州, offices and HR policies.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.graph import entity_id
from sieve.stores.metadata import Document, GraphLink
from sieve.stores.types import SearchFilter

CORPUS = Path(__file__).with_name("kg_corpus")
QUESTION = "张伟所在公司的总部位于哪个城市？"
PERSON, COMPANY = "zhangwei-profile.md", "xinghe-company.md"


def make_kb(stack, tenant: str, name: str = "wiki") -> SearchFilter:
    with stack.sessions.begin() as session:
        kb = get_or_create_kb(session, tenant, name)
        kb.profile = {"graph_extraction": True}
        return SearchFilter(tenant, kb.id)


def search(stack, query: str, flt: SearchFilter, paths: list[str], k: int = 5, degraded: tuple[str, ...] = (),
           **profile):
    # generous budgets: these tests are about what each path finds, not how fast (bench/bench_graph_path.py)
    budgets = {"embed_budget_ms": 60_000, "path_budget_ms": 60_000, "total_budget_ms": 120_000}
    retriever = HybridRetriever(stack)
    profile = retriever.load_profile(flt.kb).merged(paths=paths, top_k=k, **budgets, **profile)
    try:
        result = asyncio.run(retriever.retrieve(query, flt, profile=profile))
    finally:
        retriever.close()
    assert result.degraded == list(degraded)
    return result.hits


def filenames(hits) -> list[str]:
    return [h.filename for h in hits]


def doc_id(stack, flt: SearchFilter, filename: str) -> str:
    with stack.sessions() as session:
        return session.scalars(
            select(Document.id).where(Document.kb_id == flt.kb, Document.filename == filename)
        ).one()


@pytest.fixture
def wiki(stack, tmp_path):
    folder = tmp_path / "wiki"
    shutil.copytree(CORPUS, folder)
    flt = make_kb(stack, "t1")
    report = Ingestor(stack).ingest_paths([folder], "wiki", "t1")
    assert report.added == 14 and not report.failed
    return folder, flt


def test_the_graph_path_follows_two_hops_across_documents_where_bm25_and_dense_miss_one(stack, wiki):
    _, flt = wiki
    for paths in (["bm25"], ["dense"], ["bm25", "dense"]):
        found = filenames(search(stack, QUESTION, flt, paths))
        assert PERSON in found and COMPANY not in found, (paths, found)

    graph = filenames(search(stack, QUESTION, flt, ["graph"]))
    assert graph[:2] == [PERSON, COMPANY]
    fused = filenames(search(stack, QUESTION, flt, ["bm25", "dense", "graph"]))
    assert {PERSON, COMPANY} <= set(fused[:3])

    # the company page is two hops away: one hop stops at the profile
    assert filenames(search(stack, QUESTION, flt, ["graph"], graph_hops=1)) == [PERSON]


def test_a_question_naming_no_known_entity_gets_nothing_from_the_graph(stack, wiki):
    _, flt = wiki
    assert search(stack, "差旅住宿标准是多少", flt, ["graph"]) == []
    assert search(stack, "诸葛亮在哪里工作", flt, ["graph"]) == []


def test_the_graph_path_never_crosses_tenants(stack, wiki, tmp_path):
    _, t1 = wiki
    other = tmp_path / "other"
    other.mkdir()
    (other / "staff.md").write_text("# 员工风采\n\n张伟在蓝海生物工作，负责临床数据管理。\n", encoding="utf-8")
    (other / "company.md").write_text("# 蓝海生物\n\n蓝海生物的总部位于苏州。\n", encoding="utf-8")
    t2 = make_kb(stack, "t2")  # same KB name, another tenant
    Ingestor(stack).ingest_paths([other], "wiki", "t2")

    t2_hits = search(stack, QUESTION, t2, ["graph"])
    assert filenames(t2_hits) == ["staff.md", "company.md"]
    t1_hits = search(stack, QUESTION, t1, ["graph"])
    assert {h.doc_id for h in t1_hits}.isdisjoint({h.doc_id for h in t2_hits})
    assert "staff.md" not in filenames(search(stack, QUESTION, t1, ["bm25", "dense", "graph"], k=20))

    # the store itself: one tenant's entities are no seeds in another's scope, even by id
    t1_seeds = stack.graph.match_entities(["张伟"], t1)
    assert t1_seeds and stack.graph.expand(t1_seeds, t2, 2, 20, 10) == []
    assert stack.graph.expand(t1_seeds, SearchFilter("t2", t1.kb), 2, 20, 10) == []
    shown = stack.graph.neighbourhood("张伟", t2, 2, 20)
    assert {(e.head, e.tail) for e in shown.edges} == {("张伟", "蓝海生物"), ("蓝海生物", "苏州")}


def test_deleting_a_document_removes_its_links_and_chunks_from_graph_results(stack, wiki):
    _, flt = wiki
    company = doc_id(stack, flt, COMPANY)
    entities_before, _ = stack.graph.count(flt)
    assert stack.graph.names.index.count(flt) == entities_before

    assert Ingestor(stack).delete_documents("t1", flt.kb, [company]) == 1

    assert COMPANY not in filenames(search(stack, QUESTION, flt, ["graph"], k=20))
    assert filenames(search(stack, QUESTION, flt, ["graph"])) == [PERSON]
    edges = stack.graph.neighbourhood("星河科技", flt, 2, 20).edges
    assert edges and all(e.doc_id != company for e in edges)
    assert ("星河科技", "杭州") not in {(e.head, e.tail) for e in edges}
    # entities only that document named are gone, rows and name vectors alike; shared ones stay
    entities_after, _ = stack.graph.count(flt)
    assert entities_after < entities_before
    assert stack.graph.names.index.count(flt) == entities_after
    assert {entity_id("t1", flt.kb, "杭州"), entity_id("t1", flt.kb, "星河科技")} <= set(
        stack.graph.match_entities(["杭州", "星河科技"], flt))


def test_reindexing_a_changed_document_replaces_its_relations(stack, wiki):
    folder, flt = wiki
    (folder / PERSON).write_text(
        "# 员工风采：张伟\n\n张伟在云帆网络工作，担任课程推荐团队负责人。\n", encoding="utf-8")
    report = Ingestor(stack).ingest_paths([folder], "wiki", "t1")
    assert (report.replaced, report.unchanged) == (1, 13)

    found = filenames(search(stack, QUESTION, flt, ["graph"]))
    assert found[:2] == [PERSON, "yunfan-company.md"] and COMPANY not in found
    shown = stack.graph.neighbourhood("张伟", flt, 1, 20)
    assert {(e.head, e.tail) for e in shown.edges} == {("张伟", "云帆网络")}


def test_knowledge_bases_without_graph_extraction_get_no_graph(stack, sample_kb):
    Ingestor(stack).ingest_paths([sample_kb], "plain", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_or_create_kb(session, "t1", "plain").id)
    assert stack.graph.count(flt) == (0, 0)
    # nothing found because nothing was extracted, and the search says so
    assert search(stack, "华为公司的总部在哪里", flt, ["graph"], degraded=("graph_empty",)) == []


def test_knowledge_bases_above_the_size_cap_get_no_new_triples(stack, tmp_path):
    stack.settings = stack.settings.model_copy(update={"graph_max_chunks": 5})
    shutil.copytree(CORPUS, tmp_path / "wiki")
    flt = make_kb(stack, "t1")
    report = Ingestor(stack, batch_docs=4).ingest_paths([tmp_path / "wiki"], "wiki", "t1")
    assert report.added == 14
    with stack.sessions() as session:
        in_graph = set(session.scalars(select(GraphLink.doc_id).where(GraphLink.kb_id == flt.kb)))
    # the first batch (4 one-chunk documents) was within the cap; every later one was past it
    assert 0 < len(in_graph) <= 4
