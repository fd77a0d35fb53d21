"""Document access lists hold in every engine: random access lists, random callers, random queries.

A 14-document company wiki (with its knowledge graph) is ingested once per backend combination that
runs here (metadata DB: SQLite and PostgreSQL; vectors: Qdrant Edge and the Qdrant adapter on
qdrant-client's local mode; text: tantivy). Each example gives every document a random access list
(changed in place, nothing re-embedded), draws a caller and a query, and checks what each recall path
(BM25, dense, graph), the fused hybrid search, the engines' counts and NL2SQL return against an
oracle computed here from the drawn lists: nothing the caller may not read, and everything it may
(searched exhaustively, the engines return exactly the readable part of the unrestricted answer).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from postgres import on_sqlite_and_postgres
from sqlalchemy import func, select

from sieve.ingest.pipeline import Ingestor
from sieve.nl2sql.executor import execute
from sieve.nl2sql.guard import guard
from sieve.nl2sql.schema import metadata_allowlist
from sieve.nl2sql.service import select_documents
from sieve.retrievers.graph_path import graph_search
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.acl import Principal, document_scope
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.metadata import Chunk, Document
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).with_name("kg_corpus")
TENANT = "acme"
USERS = ["zhang.wei", "li.ming", "wang.fang"]
GROUPS = ["hr", "eng", "sales", "board"]
QUERIES = [
    "张伟所在公司的总部位于哪个城市？", "星河科技", "杭州", "年假 政策", "headquarters", "成都 研发中心",
    "王芳 采访", "蓝海公司", "行业报告", "annual meeting",
]
# what an LLM might write: every table reference gets the tenant and access-list predicates
SQL = [
    "SELECT id, title FROM documents",
    "SELECT count(*) AS n FROM documents",
    "SELECT d.id FROM documents d JOIN knowledge_bases k ON d.kb_id = k.id",
    "WITH x AS (SELECT * FROM documents) SELECT id FROM x",
    "SELECT id FROM documents WHERE id IN (SELECT id FROM documents WHERE filename LIKE '%company%')",
    "SELECT filename FROM documents UNION SELECT title FROM documents",
]
NL_QUESTIONS = ["列出所有文档", "知识库里有多少篇文档"]
K = 200  # more than the wiki's chunks: each path returns everything it matches

entries = st.sampled_from(["*"] + [f"user:{u}" for u in USERS] + [f"group:{g}" for g in GROUPS])
acls = st.one_of(st.just(("*",)), st.sets(entries.filter(lambda e: e != "*"), min_size=1, max_size=3).map(tuple))
callers = st.builds(
    lambda user, groups: Principal(TENANT, user, frozenset(groups)),
    st.one_of(st.none(), st.sampled_from(USERS)),
    st.sets(st.sampled_from(GROUPS), max_size=2),
).filter(lambda p: p.readers is not None)


@pytest.fixture(scope="module", params=["qdrant_edge", "qdrant"])
def vector_backend(request):
    return request.param


@pytest.fixture
def wiki(database_url, embedder, tmp_path, vector_backend):
    settings_ = Settings(home=tmp_path / "home", database_url=database_url, vector_backend=vector_backend,
                         qdrant_path=tmp_path / "qdrant")
    folder = tmp_path / "wiki"
    shutil.copytree(CORPUS, folder)
    with Stack(settings_, embedder=embedder) as stack:
        with stack.sessions.begin() as session:
            kb = get_or_create_kb(session, TENANT, "wiki")
            kb.profile = {"graph_extraction": True}
            kb_id = kb.id
        ingestor = Ingestor(stack)
        assert ingestor.ingest_paths([folder], "wiki", TENANT).added == 14
        with stack.sessions() as session:
            docs = dict(session.execute(select(Document.id, Document.title).where(Document.kb_id == kb_id)).all())
            chunks = dict(session.execute(select(Chunk.id, Chunk.doc_id).where(Chunk.kb_id == kb_id)).all())
        retriever = HybridRetriever(stack)
        try:
            yield stack, ingestor, retriever, kb_id, docs, chunks
        finally:
            retriever.close()


def hybrid(retriever: HybridRetriever, query: str, flt: SearchFilter):
    budgets = {"embed_budget_ms": 60_000, "path_budget_ms": 60_000, "total_budget_ms": 120_000}
    profile = retriever.load_profile(flt.kb).merged(paths=["bm25", "dense", "graph"], top_k=50, **budgets)
    return asyncio.run(retriever.retrieve(query, flt, profile=profile))


@on_sqlite_and_postgres
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_caller_ever_receives_what_its_access_lists_do_not_admit(wiki, data):
    stack, ingestor, retriever, kb_id, docs, chunks = wiki
    drawn = {doc_id: data.draw(acls, label=f"acl of {title}") for doc_id, title in sorted(docs.items())}
    for doc_id, acl in drawn.items():  # in place: the engines' payloads change, nothing is embedded
        assert ingestor.set_acl(TENANT, kb_id, doc_id, acl) == tuple(sorted(acl))
    caller = data.draw(callers, label="caller")
    query = data.draw(st.sampled_from(QUERIES), label="query")
    readable = {d for d, acl in drawn.items() if set(acl) & caller.readers}
    hidden_titles = {docs[d] for d in docs if d not in readable}

    everyone = SearchFilter(TENANT, kb_id)
    mine = SearchFilter(TENANT, kb_id, readers=caller.readers)

    # each engine: exactly the readable part of what the tenant-wide search finds
    bm25_all, bm25_mine = stack.text.search(query, everyone, K), stack.text.search(query, mine, K)
    assert {h.chunk_id for h in bm25_mine} == {h.chunk_id for h in bm25_all if h.doc_id in readable}
    vector = stack.embedder.embed_queries([query])[0]
    dense_all, dense_mine = stack.vectors.search(vector, everyone, K), stack.vectors.search(vector, mine, K)
    assert {h.chunk_id for h in dense_mine} == {h.chunk_id for h in dense_all if h.doc_id in readable}
    assert stack.text.count(mine) == stack.vectors.count(mine) == sum(1 for d in chunks.values() if d in readable)

    # the graph: an entity's relations are followed only through readable chunks
    with stack.sessions() as session:
        scope = document_scope(session, mine)
    assert scope.doc_ids == readable
    graph_hits = graph_search(stack.graph, query, scope, 2, stack.settings.graph_fanout, K)
    assert {h.doc_id for h in graph_hits} <= readable

    # fused and hydrated: chunks, titles and text of readable documents only
    result = hybrid(retriever, query, mine)
    assert {h.doc_id for h in result.hits} <= readable
    assert not {h.title for h in result.hits} & hidden_titles

    # NL2SQL: the guard's rewrite returns only readable rows, and counts only them
    dialect = "postgres" if stack.engine.dialect.name == "postgresql" else "sqlite"
    sql = data.draw(st.sampled_from(SQL), label="sql")
    rows = execute(stack.engine, guard(sql, metadata_allowlist(kb_id), tenant=TENANT, readers=caller.readers,
                                       dialect=dialect), max_rows=500).rows
    if sql.startswith("SELECT count"):
        assert rows == [(len(readable),)]
    elif "UNION" in sql:
        names = {str(v) for (v,) in rows}
        assert not names & (hidden_titles - {docs[d] for d in readable})
    else:
        assert {r[0] for r in rows} <= readable
    narrowed = select_documents(data.draw(st.sampled_from(NL_QUESTIONS), label="question"), TENANT, kb_id, stack.engine,
                      readers=caller.readers)
    for row in narrowed.rows:
        assert not set(map(str, row)) & (set(docs) - readable)
        if narrowed.columns == ["count"] or (len(row) == 1 and isinstance(row[0], int)):
            assert row[0] == len(readable)
    assert narrowed.doc_ids is None or narrowed.doc_ids <= readable


@on_sqlite_and_postgres
def test_a_changed_access_list_is_seen_by_the_next_query_and_the_tenant_wide_caller_sees_all(wiki):
    stack, ingestor, retriever, kb_id, docs, chunks = wiki
    company = next(d for d, title in docs.items() if "星河" in title and "产品" not in title)
    hr = Principal(TENANT, "li.ming", frozenset({"hr"}))
    mine = SearchFilter(TENANT, kb_id, readers=hr.readers)
    assert company in {h.doc_id for h in stack.text.search("星河科技", mine, K)}  # the whole tenant's by default

    ingestor.set_acl(TENANT, kb_id, company, ["group:board"])
    assert company not in {h.doc_id for h in stack.text.search("星河科技", mine, K)}
    assert company not in {h.doc_id for h in hybrid(retriever, "星河科技", mine).hits}
    assert company in {h.doc_id for h in hybrid(retriever, "星河科技", SearchFilter(TENANT, kb_id)).hits}

    ingestor.set_acl(TENANT, kb_id, company, ["group:hr"])
    assert company in {h.doc_id for h in hybrid(retriever, "星河科技", mine).hits}
    with stack.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Chunk).where(Chunk.doc_id == company)) > 0


def test_a_home_written_before_access_lists_is_brought_up_to_them_on_open(embedder, sample_kb, tmp_path):
    import qdrant_edge as qe
    import tantivy

    settings_ = Settings(home=tmp_path / "home")
    with Stack(settings_, embedder=embedder) as stack:
        Ingestor(stack).ingest_paths([sample_kb], "demo", TENANT)
        with stack.sessions() as session:
            kb_id = session.scalar(select(Document.kb_id))
        # what an older release left: vector points without the `acl` payload ...
        stack.vectors._open().update(qe.UpdateOperation.delete_payload_by_filter(
            qe.Filter(must=[qe.FieldCondition(key="kb", match=qe.MatchValue(kb_id))]), ["acl"]))
    # ... and a text index without the `acl` field
    shutil.rmtree(settings_.home / "text")
    old = tantivy.SchemaBuilder()
    for name in ("chunk_id", "doc_id", "tenant", "kb", "text"):
        old.add_text_field(name, stored=True)
    (settings_.home / "text").mkdir()
    tantivy.Index(old.build(), str(settings_.home / "text"))

    user = SearchFilter(TENANT, kb_id, readers=Principal(TENANT, "li.ming").readers)
    with Stack(settings_, embedder=embedder) as stack:
        chunks = stack.text.count(SearchFilter(TENANT, kb_id))  # opening rebuilds it from the metadata DB
        assert chunks >= 8 and stack.text.count(user) == stack.vectors.count(user) == chunks
        assert stack.text.search("Pheidippides", user, 3)[0].doc_id


@on_sqlite_and_postgres
def test_documents_and_keys_from_before_access_lists_stay_the_whole_tenants(settings):
    from alembic import command
    from sqlalchemy import text

    from sieve.stores.database import alembic_config, init_db, make_engine
    from sieve.stores.metadata import DocumentAcl

    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0005")
            connection.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('acme', 'acme', '2026-01-01')"))
            connection.execute(text("INSERT INTO knowledge_bases (id, tenant_id, name, description, profile, created_at) "
                                    "VALUES ('kb1', 'acme', 'hr', '', '{}', '2026-01-01')"))
            connection.execute(text(
                "INSERT INTO documents (id, tenant_id, kb_id, title, filename, source_uri, owner, tags, mime_type, "
                "content_hash, meta, status, chunk_count, created_at, updated_at) VALUES ('d1', 'acme', 'kb1', 't', "
                "'f.md', 'u', '', '[]', 'text/markdown', 'h', '{}', 'ready', 0, '2026-01-01', '2026-01-01')"))
            connection.execute(text("INSERT INTO api_keys (id, tenant_id, key_hash, prefix, name, created_at) "
                                    "VALUES ('k1', 'acme', 'hash', 'sk-sieve-abcdef', '', '2026-01-01')"))
        sessions = init_db(engine)
        with sessions() as session:
            assert session.execute(select(DocumentAcl.doc_id, DocumentAcl.entry)).all() == [("d1", "*")]
            assert session.execute(text("SELECT user_id, groups FROM api_keys")).one()[0] is None
    finally:
        engine.dispose()
