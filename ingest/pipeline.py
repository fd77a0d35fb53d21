"""Indexing: documents into the metadata DB, the text index and the vector index, crash-safely.

Each document version is its own row. A new version is written as `indexing`, becomes `ready`
in one transaction together with its predecessor turning `deleting`, and only then is the old
version removed from the engines. Searches only ever show `ready` documents, and `reconcile()`
(run whenever an ingestor starts) purges whatever a killed process left in the other states.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from more_itertools import chunked
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from tqdm import tqdm

from sieve.errors import InvalidInput
from sieve.ingest.chunker import chunk_document
from sieve.ingest.document import LoadedDocument, PageImage, TextSection
from sieve.ingest.extraction import extract_into_graph
from sieve.ingest.loaders import LoaderError, discover, iter_beir_corpus, load_file
from sieve.ingest.ocr import PageProgress, page_progress
from sieve.ingest.report import Failure, Failures, Report
from sieve.stores import crud
from sieve.stores.acl import DEFAULT_ACL, acl_of, indexed_chunks, parse_acl, store_acl
from sieve.stores.catalog import KnowledgeBaseNotEmpty, get_or_create_kb
from sieve.stores.embedding_cache import embed_passages_cached, text_hash
from sieve.stores.metadata import Chunk, Document, DocumentStatus, IngestJournal, KnowledgeBase, utcnow
from sieve.stores.stack import Stack
from sieve.stores.types import IndexedChunk

# --meta keys that are document columns; any other key lands in the free-form `meta` JSON
_COLUMN_KEYS = {"title", "owner", "source_uri"}
_DATE_KEYS = {"created_at", "updated_at", "expires_at"}
_ALIASES = {"author": "owner", "created": "created_at", "date": "created_at"}


@dataclass
class Source:
    """One document to ingest, already loaded."""

    source_uri: str
    filename: str
    content_hash: str
    loaded: LoadedDocument
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestReport(Report):
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    failed: Failures = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    doc_ids: list[str] = field(default_factory=list)

    def extend(self, other: IngestReport) -> None:
        """Adds another run's counts (one command ingesting several sources)."""
        self.added += other.added
        self.replaced += other.replaced
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.chunks += other.chunks
        self.embedded += other.embedded
        self.doc_ids += other.doc_ids


def parse_meta(pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` strings from the CLI into a metadata dict (`tags` is comma-separated)."""
    meta: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"metadata must look like key=value, got {pair!r}")
        key = key.strip()
        meta[key] = [t.strip() for t in value.split(",") if t.strip()] if key == "tags" else value
    return meta


def _apply_meta(doc: Document, meta: dict[str, Any]) -> None:
    extra = dict(doc.meta or {})
    for key, value in meta.items():
        key = _ALIASES.get(key, key)
        if key in _COLUMN_KEYS:
            setattr(doc, key, str(value))
        elif key in _DATE_KEYS:
            try:
                when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            except ValueError as exc:
                raise InvalidInput(f"{key} must be an ISO date like 2023-05-01, got {value!r}") from exc
            setattr(doc, key, when if when.tzinfo else when.replace(tzinfo=UTC))
        elif key == "tags":
            doc.tags = list(value) if isinstance(value, (list, tuple)) else [str(value)]
        else:
            extra[key] = value
    doc.meta = extra


def _page_bars() -> PageProgress:
    """A progress bar per OCR'd file, page by page (OCR takes seconds a page)."""
    bars: dict[str, tqdm] = {}

    def report(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(total=total, desc=f"ocr {name}", unit="page", leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bars.pop(name).close()

    return report


def _pictures_of(chunks: list[Chunk], images: list[PageImage]) -> Iterator[tuple[Chunk, PageImage]]:
    """Each picture with the first chunk read from where it sits (else from its page)."""
    for picture in images:
        on_page = [(c, r["box"]) for c in chunks for r in (c.meta or {}).get("regions", [])
                   if r["page"] == picture.page]
        x0, y0, x1, y1 = picture.box
        overlapping = [c for c, (a0, b0, a1, b1) in on_page if a0 < x1 and x0 < a1 and b0 < y1 and y0 < b1]
        if chunk := next(iter(overlapping or [c for c, _ in on_page]), None):
            yield chunk, picture


def _location_meta(locations: Sequence[tuple[int, tuple[float, ...]]]) -> dict[str, Any] | None:
    """A chunk's `meta`: the page it starts on and every region it was read from."""
    if not locations:
        return None
    return {"page": locations[0][0], "regions": [{"page": page, "box": list(box)} for page, box in locations]}


class Ingestor:
    """Adds, replaces and deletes documents of knowledge bases. One per process owning the home."""

    def __init__(self, stack: Stack, batch_docs: int = 64):
        # it writes the engines and reconciles what looks unfinished: on a home another process serves,
        # those are the server's documents in flight, so refuse before changing anything
        stack.check_owner()
        self.stack = stack
        self.batch_docs = batch_docs
        self.reconcile()

    # ---- entry points -------------------------------------------------------------------

    def ingest_paths(
        self, paths: Sequence[Path], kb: str, tenant: str, meta: dict[str, Any] | None = None, progress: bool = False
    ) -> IngestReport:
        files = discover(list(paths))
        report = IngestReport()

        def sources() -> Iterator[Source]:
            for path in files:
                try:
                    data = path.read_bytes()
                    loaded = load_file(path)
                except (LoaderError, OSError) as exc:
                    report.failed.append(Failure(str(path), str(exc)))
                    continue
                yield Source(
                    source_uri=path.resolve().as_uri(),
                    filename=path.name,
                    content_hash=hashlib.sha256(data).hexdigest(),
                    loaded=loaded,
                    meta=dict(meta or {}),
                )

        token = page_progress.set(_page_bars()) if progress else None
        try:
            return self.ingest_sources(sources(), kb, tenant, total=len(files), progress=progress, report=report)
        finally:
            if token is not None:
                page_progress.reset(token)

    def ingest_beir(self, corpus: Path, kb: str, tenant: str, progress: bool = False) -> IngestReport:
        def sources() -> Iterator[Source]:
            for beir_id, loaded in iter_beir_corpus(corpus):
                if loaded.title:  # titles carry much of the signal for short abstracts
                    loaded.sections.insert(0, TextSection(loaded.title))
                body = loaded.plain_text()
                yield Source(
                    source_uri=f"beir:{beir_id}",
                    filename=beir_id,
                    content_hash=hashlib.sha256(body.encode("utf-8")).hexdigest(),
                    loaded=loaded,
                    meta={"beir_id": beir_id},
                )

        return self.ingest_sources(sources(), kb, tenant, progress=progress)

    def ingest_sources(
        self,
        sources: Iterable[Source],
        kb: str,
        tenant: str,
        total: int | None = None,
        progress: bool = False,
        report: IngestReport | None = None,
    ) -> IngestReport:
        report = report or IngestReport()
        with self.stack.sessions.begin() as session:
            kb_id = get_or_create_kb(session, tenant, kb).id
        bar = tqdm(total=total, desc=f"ingest {kb}", unit="doc", disable=not progress)
        batch: list[Source] = []
        for source in sources:
            batch.append(source)
            if len(batch) >= self.batch_docs:
                self._ingest_batch(batch, tenant, kb_id, report)
                bar.update(len(batch))
                batch = []
        if batch:
            self._ingest_batch(batch, tenant, kb_id, report)
            bar.update(len(batch))
        bar.close()
        return report

    def delete_documents(self, tenant: str, kb_id: str, doc_ids: Sequence[str]) -> int:
        """Removes documents everywhere; returns how many existed."""
        with self.stack.sessions.begin() as session:
            found = list(
                session.scalars(
                    select(Document.id).where(
                        Document.tenant_id == tenant, Document.kb_id == kb_id, Document.id.in_(list(doc_ids))
                    )
                )
            )
            if not found:
                return 0
            session.execute(update(Document).where(Document.id.in_(found)).values(status=DocumentStatus.DELETING))
            session.add_all(
                IngestJournal(tenant_id=tenant, kb_id=kb_id, doc_id=d, operation="delete") for d in found
            )
        self._purge(tenant, kb_id, found)
        return len(found)

    def delete_knowledge_base(self, tenant: str, name: str) -> list[Document]:
        """Removes every document of the tenant's knowledge base `name` everywhere, then the knowledge
        base itself (its profile with it). Returns the deleted documents' rows, detached.

        `KnowledgeBaseNotFound` for an unknown name; `KnowledgeBaseNotEmpty` when a document arrived
        while deleting (the knowledge base stays, so nothing is orphaned; delete again)."""
        with self.stack.sessions() as session:
            kb_id = crud.kb_id(session, tenant, name)
            docs = list(session.scalars(select(Document).where(Document.tenant_id == tenant, Document.kb_id == kb_id)))
            session.expunge_all()
        self.delete_documents(tenant, kb_id, [d.id for d in docs])
        with self.stack.sessions.begin() as session:
            if session.scalar(select(Document.id).where(Document.kb_id == kb_id).limit(1)) is not None:
                raise KnowledgeBaseNotEmpty(tenant, name)
            session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == kb_id))
        return docs

    def reconcile(self) -> int:
        """Purges document versions a crashed process left `indexing` or `deleting`."""
        with self.stack.sessions() as session:
            stale = session.execute(
                select(Document.tenant_id, Document.kb_id, Document.id).where(
                    Document.status.in_([DocumentStatus.INDEXING, DocumentStatus.DELETING])
                )
            ).all()
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for tenant, kb_id, doc_id in stale:
            groups[(tenant, kb_id)].append(doc_id)
        for (tenant, kb_id), doc_ids in groups.items():
            self._purge(tenant, kb_id, doc_ids, reconciled=True)
        return len(stale)

    def set_acl(self, tenant: str, kb_id: str, doc_id: str, acl: Sequence[str]) -> tuple[str, ...] | None:
        """Replace a ready document's access list in the DB and in every engine's payload (nothing is
        embedded again); visible to the next query. None when the tenant's KB has no such document."""
        entries = parse_acl(acl)
        with self.stack.sessions.begin() as session:
            doc = crud.get_document(session, tenant, crud.KbId(kb_id), doc_id)
            if doc is None:
                return None
            store_acl(session, doc.id, entries)
            chunks = indexed_chunks(session, doc, entries)
            # the engines first, inside the DB transaction: a failure leaves the old list everywhere it is read
            self.stack.text.set_acl(chunks)
            self.stack.space(kb_id).vectors.set_acl(chunks)
            if self.stack.has_image_vectors():
                self.stack.image_vectors.set_acl(chunks)
        return entries

    # ---- internals ----------------------------------------------------------------------

    def _ingest_batch(self, batch: list[Source], tenant: str, kb_id: str, report: IngestReport) -> None:
        settings = self.stack.settings
        tokenizer = self.stack.embedder.tokenizer
        new_docs: list[tuple[Document, str | None, list[Chunk]]] = []  # (doc, replaced doc id, chunks)
        acls: dict[str, tuple[str, ...]] = {}  # new document id -> its access list
        changed_acls: list[tuple[str, tuple[str, ...]]] = []  # unchanged documents given a new list
        pictures: list[tuple[Chunk, PageImage]] = []  # for the `image` path, each with the chunk it belongs to
        with self.stack.sessions.begin() as session:
            for source in batch:
                current = self._current_version(session, kb_id, source.source_uri)
                meta = dict(source.meta)
                try:
                    # a new version keeps its predecessor's access list unless the upload names one
                    acl = parse_acl(meta.pop("acl")) if "acl" in meta else None
                except ValueError as exc:
                    report.failed.append(Failure(source.source_uri, str(exc)))
                    continue
                if current is not None and current.content_hash == source.content_hash:
                    if meta:
                        _apply_meta(current, meta)
                    if acl is not None and acl != acl_of(session, current.id):
                        changed_acls.append((current.id, acl))
                    report.unchanged += 1
                    report.doc_ids.append(current.id)
                    continue
                try:
                    spans = chunk_document(source.loaded, tokenizer, settings.chunk_tokens, settings.chunk_overlap)
                    doc = Document(
                        tenant_id=tenant,
                        kb_id=kb_id,
                        title=source.loaded.title or source.filename,
                        filename=source.filename,
                        source_uri=source.source_uri,
                        mime_type=source.loaded.mime_type,
                        content_hash=source.content_hash,
                        status=DocumentStatus.INDEXING,
                    )
                    _apply_meta(doc, {**(source.loaded.meta or {}), **meta})
                except ValueError as exc:
                    report.failed.append(Failure(source.source_uri, str(exc)))
                    continue
                if not spans:
                    report.failed.append(Failure(source.source_uri, "no text found in the document"))
                    continue
                session.add(doc)
                session.flush()
                acls[doc.id] = acl or (acl_of(session, current.id) if current is not None else DEFAULT_ACL)
                store_acl(session, doc.id, acls[doc.id])
                chunks = [
                    Chunk(
                        doc_id=doc.id,
                        tenant_id=tenant,
                        kb_id=kb_id,
                        ordinal=s.ordinal,
                        token_start=s.token_start,
                        token_end=s.token_end,
                        text=s.text,
                        text_hash=text_hash(s.text),
                        meta=_location_meta(s.locations),
                    )
                    for s in spans
                ]
                doc.chunk_count = len(chunks)
                session.add_all(chunks)
                replaced = current.id if current is not None else None
                session.add(
                    IngestJournal(
                        tenant_id=tenant,
                        kb_id=kb_id,
                        doc_id=doc.id,
                        operation="replace" if replaced else "add",
                        detail={"source": source.source_uri, "replaces": replaced},
                    )
                )
                new_docs.append((doc, replaced, chunks))
                if settings.image_embedder_configured:
                    pictures.extend(_pictures_of(chunks, source.loaded.images))
        for doc_id, acl in changed_acls:
            self.set_acl(tenant, kb_id, doc_id, acl)
        if not new_docs:
            return

        all_chunks = [c for _, _, cs in new_docs for c in cs]
        space = self.stack.space(kb_id)  # the KB's own embedder when it has one (`sieve kb reembed`)
        vectors, embedded = embed_passages_cached(
            space.embedder,
            space.cache,
            [c.text for c in all_chunks],
            batch_size=settings.embedder_batch_size,
        )
        indexed = [IndexedChunk(c.id, c.doc_id, tenant, kb_id, c.text, acls[c.doc_id]) for c in all_chunks]
        self.stack.text.add(indexed)
        space.vectors.add(indexed, vectors)
        extract_into_graph(self.stack, tenant, kb_id, indexed)
        if pictures:
            self._index_pictures(pictures, tenant, kb_id, acls)

        new_ids = [d.id for d, _, _ in new_docs]
        replaced_ids = [r for _, r, _ in new_docs if r]
        with self.stack.sessions.begin() as session:  # the switch-over is one transaction
            now = utcnow()
            session.execute(
                update(Document).where(Document.id.in_(new_ids)).values(status=DocumentStatus.READY, updated_at=now)
            )
            if replaced_ids:
                session.execute(
                    update(Document).where(Document.id.in_(replaced_ids)).values(status=DocumentStatus.DELETING)
                )
            session.execute(
                update(IngestJournal)
                .where(IngestJournal.doc_id.in_(new_ids), IngestJournal.finished_at.is_(None))
                .values(finished_at=now)
            )
        if replaced_ids:
            self._purge(tenant, kb_id, replaced_ids)
        report.added += len(new_ids) - len(replaced_ids)
        report.replaced += len(replaced_ids)
        report.chunks += len(all_chunks)
        report.embedded += embedded
        report.doc_ids.extend(new_ids)

    def _index_pictures(
        self, pictures: list[tuple[Chunk, PageImage]], tenant: str, kb_id: str, acls: dict[str, tuple[str, ...]]
    ) -> None:
        """One image vector per chunk (its first picture): an image path hit is that chunk."""
        embedder = self.stack.image_embedder
        assert embedder is not None
        first = list({chunk.id: (chunk, picture) for chunk, picture in reversed(pictures)}.values())
        for batch in chunked(first, self.stack.settings.embedder_batch_size):
            vectors = embedder.embed_images([picture.image for _, picture in batch])
            self.stack.image_vectors.add(
                [IndexedChunk(c.id, c.doc_id, tenant, kb_id, c.text, acls[c.doc_id]) for c, _ in batch], vectors)

    @staticmethod
    def _current_version(session: Session, kb_id: str, source_uri: str) -> Document | None:
        return session.scalar(
            select(Document).where(
                Document.kb_id == kb_id, Document.source_uri == source_uri, Document.status == DocumentStatus.READY
            )
        )

    def _purge(self, tenant: str, kb_id: str, doc_ids: list[str], reconciled: bool = False) -> None:
        """Engines first, rows last: if this dies half-way, the rows still say what to purge."""
        self.stack.text.delete_documents(tenant, kb_id, doc_ids)
        self.stack.space(kb_id).vectors.delete_documents(tenant, kb_id, doc_ids)
        self.stack.graph.delete_documents(tenant, kb_id, doc_ids)
        if self.stack.has_image_vectors():
            self.stack.image_vectors.delete_documents(tenant, kb_id, doc_ids)
        with self.stack.sessions.begin() as session:
            now = utcnow()
            session.execute(delete(Chunk).where(Chunk.doc_id.in_(doc_ids)))
            session.execute(delete(Document).where(Document.id.in_(doc_ids)))
            session.execute(
                update(IngestJournal)
                .where(IngestJournal.doc_id.in_(doc_ids), IngestJournal.finished_at.is_(None))
                .values(finished_at=now)
            )
            if reconciled:
                session.add_all(
                    IngestJournal(tenant_id=tenant, kb_id=kb_id, doc_id=d, operation="reconcile", finished_at=now)
                    for d in doc_ids
                )
