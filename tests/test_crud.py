"""The data-access layer on a real metadata DB (SQLite, and PostgreSQL where it can start): the queries the
API, the CLI and migrations share answer only a tenant's ready, readable documents of the named KB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from postgres import on_sqlite_and_postgres

from sieve.api.job_queue import Job
from sieve.api.schemas import DocumentPublic, JobPublic
from sieve.settings import Settings
from sieve.stores import crud
from sieve.stores.acl import Principal, store_acl
from sieve.stores.catalog import KnowledgeBaseNotFound, get_or_create_kb
from sieve.stores.database import init_db, make_engine
from sieve.stores.metadata import Chunk, Document, DocumentStatus, JobKind, JobRecord, JobStatus

pytestmark = on_sqlite_and_postgres


@pytest.fixture
def sessions(tmp_path, database_url):
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    yield init_db(engine)
    engine.dispose()


def add_document(session, tenant: str, kb_id: str, filename: str, status: str = DocumentStatus.READY,
                 acl: tuple[str, ...] = ("*",), chunks: tuple[str, ...] = ()) -> Document:
    doc = Document(tenant_id=tenant, kb_id=kb_id, filename=filename, content_hash=f"hash-{filename}",
                   source_uri=f"upload://{filename}", status=status, chunk_count=len(chunks))
    session.add(doc)
    session.flush()
    store_acl(session, doc.id, acl)
    # stored out of order: readers get them by ordinal
    for ordinal in reversed(range(len(chunks))):
        session.add(Chunk(doc_id=doc.id, tenant_id=tenant, kb_id=kb_id, ordinal=ordinal, token_start=ordinal * 10,
                          token_end=ordinal * 10 + 9, text=chunks[ordinal], text_hash=f"{doc.id}-{ordinal}",
                          meta={"page": ordinal + 1} if filename.endswith(".png") else None))
    session.flush()
    return doc


@pytest.fixture
def world(sessions):
    """Tenants a and b each have a KB `handbook`; a's holds ready, indexing and hidden documents."""
    with sessions.begin() as session:
        a = get_or_create_kb(session, "a", "handbook").id
        b = get_or_create_kb(session, "b", "handbook").id
        other = get_or_create_kb(session, "a", "other").id
        docs = {
            "zeta": add_document(session, "a", a, "zeta.md", chunks=("first half", "second half")).id,
            "alpha": add_document(session, "a", a, "alpha.md").id,
            "indexing": add_document(session, "a", a, "new.md", status=DocumentStatus.INDEXING).id,
            "hr": add_document(session, "a", a, "salaries.md", acl=("group:hr",)).id,
            "scan": add_document(session, "a", a, "scan.png", chunks=("page one", "page two")).id,
            "other_kb": add_document(session, "a", other, "elsewhere.md").id,
            "b": add_document(session, "b", b, "secret.md").id,
        }
    return {"sessions": sessions, "a": a, "b": b, "other": other, "docs": docs}


def test_a_kb_name_becomes_its_own_tenants_id_and_an_unknown_name_is_not_found(world):
    with world["sessions"]() as session:
        assert crud.kb_id(session, "a", crud.KbName("handbook")) == world["a"]
        assert crud.kb_id(session, "b", crud.KbName("handbook")) == world["b"] != world["a"]
        with pytest.raises(KnowledgeBaseNotFound):
            crud.kb_id(session, "b", crud.KbName("other"))
        ref = crud.KnowledgeBaseRef(crud.KbName("handbook"), world["a"])
        assert crud.knowledge_base(session, "a", ref).name == "handbook"
        with pytest.raises(KnowledgeBaseNotFound):  # another tenant's id is not found through this one
            crud.knowledge_base(session, "b", ref)


def test_the_documents_of_a_kb_are_its_tenants_ready_ones_by_file_name_and_readers_see_only_theirs(world):
    sessions, a, docs = world["sessions"], world["a"], world["docs"]
    with sessions() as session:
        every = [d.filename for d in crud.list_documents(session, "a", a)]
        assert every == ["alpha.md", "salaries.md", "scan.png", "zeta.md"]
        readers = Principal("a", "zhang.wei", frozenset({"eng"})).readers
        assert [d.filename for d in crud.list_documents(session, "a", a, readers)] == ["alpha.md", "scan.png", "zeta.md"]
        assert crud.list_documents(session, "b", a) == []  # b's key cannot reach a's KB by its id

        assert crud.get_document(session, "a", a, docs["alpha"]).filename == "alpha.md"
        for tenant, kb, doc_id in [("a", a, docs["indexing"]), ("a", a, docs["other_kb"]), ("a", a, docs["b"]),
                                   ("b", world["b"], docs["alpha"]), ("a", a, "missing")]:
            assert crud.get_document(session, tenant, kb, doc_id) is None
        assert crud.get_document(session, "a", a, docs["hr"], readers) is None
        assert crud.get_document(session, "a", a, docs["hr"], frozenset({"group:hr"})) is not None

        assert crud.ready_document_ids(session, a) == sorted(docs[k] for k in ("zeta", "alpha", "hr", "scan"))
        assert crud.count_named_documents(session, a, {"alpha.md", "new.md", "elsewhere.md", "nope.md"}) == 1
        assert crud.current_content_hash(session, "a", a, "upload://alpha.md") == "hash-alpha.md"
        assert crud.current_content_hash(session, "a", a, "upload://new.md") is None  # not ready yet
        assert crud.content_in_use(session, "hash-secret.md", "upload://")
        assert not crud.content_in_use(session, "hash-secret.md", "file://")


def test_chunks_come_in_reading_order_with_the_page_they_were_read_from(world):
    sessions, docs = world["sessions"], world["docs"]
    with sessions() as session:
        assert [c.text for c in crud.document_chunks(session, "a", docs["zeta"])] == ["first half", "second half"]
        assert crud.document_chunks(session, "b", docs["zeta"]) == []
        scan = crud.document_chunks(session, "a", docs["scan"])
        assert crud.chunk_location(session, "a", docs["scan"], scan[1].id) == {"page": 2}
        text = crud.document_chunks(session, "a", docs["zeta"])[0]
        assert crud.chunk_location(session, "a", docs["zeta"], text.id) is None
        tenant, chunk, doc = crud.cited_chunk(session, crud.KbName("handbook"), docs["scan"], scan[0].id)
        assert (tenant, chunk.text, doc.filename) == ("a", "page one", "scan.png")
        assert crud.cited_chunk(session, crud.KbName("other"), docs["scan"], scan[0].id) is None


def test_a_migration_reads_documents_and_chunks_by_id_counts_the_kbs_chunks_and_marks_them_ready(world):
    sessions, a, docs = world["sessions"], world["a"], world["docs"]
    wanted = [docs["scan"], docs["indexing"], docs["zeta"]]
    with sessions() as session:
        assert {d.filename for d in crud.documents_by_id(session, wanted)} == {"scan.png", "new.md", "zeta.md"}
        chunks = [(c.doc_id, c.text) for c in crud.chunks_of_documents(session, wanted)]
        assert chunks == sorted([(docs["scan"], "page one"), (docs["scan"], "page two"), (docs["zeta"], "first half"),
                                 (docs["zeta"], "second half")])
        assert crud.count_chunks(session, a) == 4 and crud.count_chunks(session, world["b"]) == 0
    with sessions.begin() as session:
        crud.mark_ready(session, [docs["indexing"]])
    with sessions() as session:
        assert crud.get_document(session, "a", a, docs["indexing"]).filename == "new.md"


def test_file_names_by_document_id_are_the_tenants_own(world):
    docs = world["docs"]
    with world["sessions"]() as session:
        assert crud.filenames(session, "a", {docs["alpha"], docs["b"], "missing"}) == {docs["alpha"]: "alpha.md"}
        assert crud.filenames(session, "b", {docs["alpha"], docs["b"]}) == {docs["b"]: "secret.md"}


def test_an_evaluation_starts_running_and_records_how_it_ended(world):
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with world["sessions"].begin() as session:
        ok = crud.add_evaluation(session, "a", world["a"], "refusal", "first").id
        failed = crud.add_evaluation(session, "a", world["a"], "beir", "second").id
    with world["sessions"].begin() as session:
        crud.finish_evaluation(session, ok, "succeeded", start, result={"rows": 3})
        crud.finish_evaluation(session, failed, "failed", start, error="no labelled documents")
        crud.finish_evaluation(session, "gone", "failed", start, error="its knowledge base was deleted")
    with world["sessions"]() as session:
        rows = {row.name: row for row in crud.list_evaluations(session, "a", world["a"])}
        assert (rows["first"].status, rows["first"].result, rows["first"].error) == ("succeeded", {"rows": 3}, None)
        assert (rows["second"].status, rows["second"].result, rows["second"].error) == (
            "failed", None, "no labelled documents")
        assert crud.list_evaluations(session, "b", world["b"]) == []


def test_a_documents_moments_read_back_as_utc_in_its_public_form(world):
    with world["sessions"]() as session:
        doc = crud.get_document(session, "a", world["a"], world["docs"]["alpha"])
        public = DocumentPublic.of(doc, ("*",)).model_dump(mode="json")
    assert public["created_at"].endswith("+00:00") and public["updated_at"].endswith("+00:00")
    assert "chunk_texts" not in DocumentPublic.of(doc, ("*",)).model_dump(exclude_unset=True)


def test_jobs_are_saved_read_back_aware_and_a_restart_fails_only_its_own_homes_unfinished_ones(sessions):
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def job(job_id: str, home: str, status: JobStatus, kind: JobKind = JobKind.INGEST, **moments: datetime) -> JobRecord:
        return JobRecord(id=job_id, tenant_id="a", home=home, kb="handbook", kind=kind, filename=f"{job_id}.md",
                         status=status, created_at=start, **moments)

    with sessions.begin() as session:
        for record in [job("j1", "/home/one", JobStatus.RUNNING),
                       job("j2", "/home/one", JobStatus.SUCCEEDED, finished_at=start),
                       job("j3", "/home/one", JobStatus.QUEUED, JobKind.GRAPH_BUILD),
                       job("j4", "/home/two", JobStatus.QUEUED)]:
            crud.save_job(session, record)
    with sessions.begin() as session:
        assert crud.fail_unfinished_jobs(session, "/home/one", "stopped", start + timedelta(minutes=1)) == 2
    with sessions() as session:
        statuses = {job_id: crud.get_job(session, "a", job_id).status for job_id in ("j1", "j2", "j3", "j4")}
        assert statuses == {"j1": "failed", "j2": "succeeded", "j3": "failed", "j4": "queued"}
        assert crud.get_job(session, "a", "missing") is None
        assert crud.get_job(session, "b", "j1") is None  # another tenant's job is not there for it
        public = JobPublic.of(Job(crud.get_job(session, "a", "j1"))).model_dump(mode="json")
    assert public["created_at"] == "2026-01-02T03:04:05+00:00"
    assert public["finished_at"] == "2026-01-02T03:05:05+00:00" and public["error"] == "stopped"
