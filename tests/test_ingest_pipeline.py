"""Ingest end to end on the real engines: idempotency, replacement, deletion, isolation (metadata DB: SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from postgres import on_sqlite_and_postgres
from sqlalchemy import func, select

from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.catalog import get_kb
from sieve.stores.metadata import Chunk, Document, DocumentStatus
from sieve.stores.types import SearchFilter

pytestmark = on_sqlite_and_postgres


def kb_filter(stack, tenant: str, kb: str) -> SearchFilter:
    with stack.sessions() as session:
        return SearchFilter(tenant, get_kb(session, tenant, kb).id)


def search(stack, query: str, flt: SearchFilter, paths=("bm25", "dense"), k=10):
    retriever = HybridRetriever(stack)
    profile = retriever.load_profile(flt.kb).merged(paths=list(paths), top_k=k)
    try:
        return asyncio.run(retriever.retrieve(query, flt, profile=profile))
    finally:
        retriever.close()


def chunk_rows(stack, flt: SearchFilter) -> int:
    with stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(Chunk).where(Chunk.kb_id == flt.kb))


def test_reingesting_an_unchanged_folder_embeds_nothing(stack, sample_kb):
    first = Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    assert first.added == 8 and not first.failed and first.chunks >= 8
    again = Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    assert (again.added, again.replaced, again.unchanged, again.embedded, again.chunks) == (0, 0, 8, 0, 0)
    flt = kb_filter(stack, "t1", "demo")
    assert stack.text.count(flt) == stack.vectors.count(flt) == chunk_rows(stack, flt) == first.chunks


def test_a_changed_file_replaces_its_chunks_everywhere(stack, sample_kb):
    ingestor = Ingestor(stack)
    ingestor.ingest_paths([sample_kb], "demo", "t1")
    flt = kb_filter(stack, "t1", "demo")
    assert any(h.filename == "marathon.txt" for h in search(stack, "Pheidippides", flt, ["bm25"]).hits)

    (sample_kb / "marathon.txt").write_text("Ultramarathon\n\nAn ultramarathon is any footrace longer than 42 km.\n")
    report = ingestor.ingest_paths([sample_kb], "demo", "t1")
    assert (report.replaced, report.unchanged, report.added) == (1, 7, 0)
    assert not any(h.filename == "marathon.txt" for h in search(stack, "Pheidippides", flt, ["bm25"]).hits)
    assert search(stack, "ultramarathon footrace", flt, ["bm25"]).hits[0].filename == "marathon.txt"
    with stack.sessions() as session:
        versions = session.scalars(select(Document).where(Document.filename == "marathon.txt")).all()
    assert len(versions) == 1 and versions[0].status == DocumentStatus.READY
    assert stack.text.count(flt) == stack.vectors.count(flt) == chunk_rows(stack, flt)


def test_deleting_a_document_removes_it_from_bm25_vectors_and_metadata(stack, sample_kb):
    ingestor = Ingestor(stack)
    ingestor.ingest_paths([sample_kb], "demo", "t1")
    flt = kb_filter(stack, "t1", "demo")
    with stack.sessions() as session:
        doc = session.scalars(select(Document).where(Document.filename == "huawei.md")).one()
    before = stack.text.count(flt)

    assert ingestor.delete_documents("t1", flt.kb, [doc.id]) == 1
    assert stack.text.count(flt) == before - doc.chunk_count
    assert stack.vectors.count(flt) == before - doc.chunk_count
    assert stack.text.count(SearchFilter("t1", flt.kb, frozenset({doc.id}))) == 0
    assert stack.vectors.count(SearchFilter("t1", flt.kb, frozenset({doc.id}))) == 0
    with stack.sessions() as session:
        assert session.get(Document, doc.id) is None
        assert session.scalar(select(func.count()).select_from(Chunk).where(Chunk.doc_id == doc.id)) == 0
    for paths in (["bm25"], ["dense"], ["bm25", "dense"]):
        assert all(h.doc_id != doc.id for h in search(stack, "华为公司总部在哪里", flt, paths, k=20).hits)
    assert ingestor.delete_documents("t1", flt.kb, [doc.id]) == 0


def test_a_tenant_never_sees_another_tenants_chunks(stack, sample_kb, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "secret.md").write_text("# 苹果公司机密\n\n苹果公司 Apple 的下一代产品计划属于租户 B 的机密文件。\n")
    ingestor = Ingestor(stack)
    ingestor.ingest_paths([sample_kb], "shared-name", "tenant-a")
    ingestor.ingest_paths([other], "shared-name", "tenant-b")
    a = kb_filter(stack, "tenant-a", "shared-name")
    b = kb_filter(stack, "tenant-b", "shared-name")
    assert a.kb != b.kb
    for paths in (["bm25"], ["dense"], ["bm25", "dense"]):
        hits_a = search(stack, "苹果公司 Apple 机密 产品计划", a, paths, k=50).hits
        assert hits_a and all(h.filename != "secret.md" for h in hits_a)
        hits_b = search(stack, "苹果公司 Apple 机密 产品计划", b, paths, k=50).hits
        assert {h.filename for h in hits_b} == {"secret.md"}
    # a forged filter naming tenant B's knowledge base under tenant A's id finds nothing
    forged = SearchFilter("tenant-a", b.kb)
    assert search(stack, "苹果公司 机密", forged).hits == []


def test_the_allow_list_limits_every_path(stack, sample_kb):
    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    flt = kb_filter(stack, "t1", "demo")
    with stack.sessions() as session:
        huawei = session.scalars(select(Document.id).where(Document.filename == "huawei.md")).one()
    only = SearchFilter("t1", flt.kb, frozenset({huawei}))
    for paths in (["bm25"], ["dense"], ["bm25", "dense"]):
        hits = search(stack, "苹果公司", only, paths).hits
        assert {h.doc_id for h in hits} <= {huawei}
    assert search(stack, "苹果公司", SearchFilter("t1", flt.kb, frozenset())).hits == []


def test_unsupported_and_empty_files_are_reported_and_nothing_is_lost(stack, sample_kb):
    ingestor = Ingestor(stack)
    ingestor.ingest_paths([sample_kb], "demo", "t1")
    (sample_kb / "empty.txt").write_text("")
    (sample_kb / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    report = ingestor.ingest_paths([sample_kb], "demo", "t1")
    assert report.unchanged == 8
    assert {s.rsplit("/", 1)[-1] for s, _ in report.failed} == {"empty.txt", "broken.pdf"}
    flt = kb_filter(stack, "t1", "demo")
    assert stack.text.count(flt) == stack.vectors.count(flt) == chunk_rows(stack, flt) > 0
