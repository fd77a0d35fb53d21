"""What upload and re-index jobs do, in the job worker's thread (the engines' one writer).

Uploaded originals are kept as `uploads/<sha256><suffix>` so a document can be re-indexed later,
and removed once no document of that content remains. A file that fails to load fails its job
before anything is written: what is already stored stays as it was.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from sieve.api.job_queue import JobFailed, JobProgress
from sieve.api.state import AppState
from sieve.api.uploads import StagedUpload
from sieve.ingest import originals
from sieve.ingest.document import LoadedDocument
from sieve.ingest.loaders import LoaderError, load_bytes
from sieve.ingest.ocr import page_progress
from sieve.ingest.originals import UPLOAD_SCHEME
from sieve.ingest.pipeline import IngestReport, Source
from sieve.stores import crud
from sieve.stores.crud import KnowledgeBaseRef
from sieve.stores.metadata import Document


def original_path(state: AppState, content_hash: str, filename: str) -> Path:
    return originals.original_path(state.settings.home, content_hash, filename)


def source_path(state: AppState, doc: Document) -> Path:
    """Where a document's original can be read again; JobFailed when it cannot."""
    try:
        return originals.source_path(state.settings.home, doc)
    except originals.OriginalUnavailable as exc:
        raise JobFailed(str(exc)) from None


def discard_unused_original(state: AppState, content_hash: str, filename: str) -> None:
    with state.stack.sessions() as session:
        used = crud.content_in_use(session, content_hash, UPLOAD_SCHEME)
    if not used:
        original_path(state, content_hash, filename).unlink(missing_ok=True)


def _load(path: Path, filename: str) -> tuple[LoadedDocument, str]:
    data = path.read_bytes()
    try:
        return load_bytes(data, filename), hashlib.sha256(data).hexdigest()
    except LoaderError as exc:
        raise JobFailed(str(exc)) from None


def ingest_upload(state: AppState, tenant: str, kb: KnowledgeBaseRef, upload: StagedUpload,
                  progress: JobProgress | None = None) -> IngestReport:
    """A new document, or a new version of the KB's document with the same file name.

    `progress` follows the pages of a file that needs OCR (done, total)."""
    path = original_path(state, upload.sha256, upload.filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(upload.path, path)
    source_uri = UPLOAD_SCHEME + upload.filename
    with state.stack.sessions() as session:
        previous = crud.current_content_hash(session, tenant, kb.id, source_uri)
    token = page_progress.set(lambda _name, done, total: progress(done, total)) if progress else None
    try:
        loaded, _ = _load(path, upload.filename)
        report = state.ingestor.ingest_sources(
            [Source(source_uri, upload.filename, upload.sha256, loaded, upload.meta)], kb.name, tenant
        )
    finally:
        if token is not None:
            page_progress.reset(token)
        discard_unused_original(state, upload.sha256, upload.filename)
    if previous and previous != upload.sha256:
        discard_unused_original(state, previous, upload.filename)
    return report


def reindex_document(state: AppState, tenant: str, kb: KnowledgeBaseRef, doc_id: str) -> IngestReport:
    """Chunks, embeds and indexes the document's original again, keeping its metadata."""
    with state.stack.sessions() as session:
        doc = crud.get_document(session, tenant, kb.id, doc_id)
    if doc is None:
        raise JobFailed(f"document {doc_id} no longer exists")
    path = source_path(state, doc)
    loaded, content_hash = _load(path, doc.filename)
    meta: dict[str, Any] = {**doc.meta, "title": doc.title, "owner": doc.owner, "tags": doc.tags,
                            "created_at": doc.created_at}
    if doc.expires_at is not None:
        meta["expires_at"] = doc.expires_at
    # an unchanged hash would make the pipeline skip the file; the new version carries the real one
    _set_hash(state, doc_id, "")
    report: IngestReport | None = None
    try:
        report = state.ingestor.ingest_sources(
            [Source(doc.source_uri, doc.filename, content_hash, loaded, meta)], kb.name, tenant
        )
    finally:
        if report is None or report.failed:  # the old version still serves: give it back its hash
            _set_hash(state, doc_id, doc.content_hash)
    return report


def _set_hash(state: AppState, doc_id: str, content_hash: str) -> None:
    with state.stack.sessions.begin() as session:
        crud.set_content_hash(session, doc_id, content_hash)
