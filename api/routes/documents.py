"""Documents of a knowledge base: upload (a background job), list, get, delete, re-index, the access
list, and the page image a chunk of an image or a scan was read from.

A caller with access lists (a user's key or token) sees only the documents it may read; any other
document answers 404 exactly like one that does not exist. Changing documents takes a tenant-wide key."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from sieve.api.deps import KnowledgeBaseDep, PrincipalDep, StateDep, WriterDep
from sieve.api.ingest_jobs import UPLOAD_SCHEME, discard_unused_original, ingest_upload, reindex_document, source_path
from sieve.api.job_queue import JobFailed, JobProgress
from sieve.api.routes.jobs import accepted
from sieve.api.schemas import AclPublic, ChunkPublic, ChunksPublic, DocumentPublic, DocumentsPublic, JobPublic
from sieve.api.state import AppState
from sieve.api.uploads import receive_upload
from sieve.ingest.loaders import LoaderError
from sieve.ingest.originals import OriginalUnavailable, region_jpeg
from sieve.stores import crud
from sieve.stores.acl import InvalidAcl, acls_of, parse_acl
from sieve.stores.crud import KnowledgeBaseRef
from sieve.stores.metadata import Document, JobKind

router = APIRouter(prefix="/v1/knowledge-bases/{kb}/documents", tags=["documents"])


class AclBody(BaseModel):
    acl: list[str] = Field(min_length=1, description="Entries `user:<id>`, `group:<name>`, or `tenant` alone.")


def _document(state: AppState, tenant: str, kb: KnowledgeBaseRef, doc_id: str,
              readers: frozenset[str] | None = None) -> Document:
    """The tenant's ready document in that KB that `readers` may read; 404 for anything else (including
    other tenants' and hidden ones)."""
    with state.stack.sessions() as session:
        doc = crud.get_document(session, tenant, kb.id, doc_id, readers)
    if doc is None:
        raise HTTPException(404, f"document {doc_id!r} does not exist in knowledge base {kb.name!r}")
    return doc


@router.post("", status_code=202)
async def upload_document(request: Request, response: Response, state: StateDep, tenant: WriterDep,
                          kb: KnowledgeBaseDep) -> JobPublic:
    """Multipart `file` (and optional `metadata`, a JSON object: owner, tags, created_at, acl ...).

    `acl` (a list, or a comma-separated string like `group:hr,user:zhang.wei`) says who may read the
    document; without it the whole tenant may (a new version keeps its predecessor's list).

    A file with the name of one already in the KB replaces it once the new version is indexed.
    Poll the returned job (`GET /v1/jobs/{id}`) for the outcome; for an image or a scan, its
    `progress` counts the pages read.
    """
    upload = await receive_upload(request, state.uploads / ".incoming", state.settings.max_upload_bytes)
    if "acl" in upload.meta:
        try:
            parse_acl(upload.meta["acl"])
        except (InvalidAcl, TypeError) as exc:
            raise HTTPException(422, f"metadata.acl: {exc}") from None
    progress = JobProgress()  # pages read so far, for images and scans (OCR takes seconds a page)
    job = await state.jobs.submit(tenant, kb.name, JobKind.INGEST, upload.filename,
                                  partial(ingest_upload, state, tenant, kb, upload, progress), progress)
    return accepted(job, response)


@router.get("")
async def list_documents(kb: KnowledgeBaseDep, state: StateDep, caller: PrincipalDep) -> DocumentsPublic:
    def rows() -> list[DocumentPublic]:
        with state.stack.sessions() as session:
            docs = crud.list_documents(session, caller.tenant, kb.id, caller.readers)
            acls = acls_of(session, [d.id for d in docs])
            return [DocumentPublic.of(d, acls[d.id]) for d in docs]

    return DocumentsPublic(data=await asyncio.to_thread(rows))


# unset fields are left out: `chunk_texts` only answers `?chunks=true`
@router.get("/{doc_id}", response_model_exclude_unset=True)
async def get_document(kb: KnowledgeBaseDep, doc_id: str, state: StateDep, caller: PrincipalDep,
                       chunks: Annotated[bool, Query(description="Include the indexed chunks' text.")] = False
                       ) -> DocumentPublic:
    tenant = caller.tenant

    def load() -> DocumentPublic:
        doc = _document(state, tenant, kb, doc_id, caller.readers)
        with state.stack.sessions() as session:
            texts = [c.text for c in crud.document_chunks(session, tenant, doc.id)] if chunks else None
            return DocumentPublic.of(doc, acls_of(session, [doc.id])[doc.id], texts)

    return await asyncio.to_thread(load)


@router.get("/{doc_id}/chunks")
async def list_chunks(kb: KnowledgeBaseDep, doc_id: str, state: StateDep, caller: PrincipalDep) -> ChunksPublic:
    """The document's chunks in order: text, position (ordinal, token span) and, for pages read from an
    image or a scan, where on which page (`location`)."""
    tenant = caller.tenant

    def load() -> ChunksPublic:
        doc = _document(state, tenant, kb, doc_id, caller.readers)
        with state.stack.sessions() as session:
            rows = crud.document_chunks(session, tenant, doc.id)
            return ChunksPublic(doc_id=doc.id, filename=doc.filename, data=[ChunkPublic.of(c) for c in rows])

    return await asyncio.to_thread(load)


@router.delete("/{doc_id}", status_code=204)
async def delete_document(doc_id: str, state: StateDep, tenant: WriterDep, kb: KnowledgeBaseDep) -> Response:
    """Removes the document from the metadata DB, BM25 and vectors before answering."""
    doc = await asyncio.to_thread(_document, state, tenant, kb, doc_id)
    deleted = await state.jobs.write(state.ingestor.delete_documents, tenant, doc.kb_id, [doc.id])
    if not deleted:  # a concurrent delete won
        raise HTTPException(404, f"document {doc_id!r} does not exist in knowledge base {kb.name!r}")
    if doc.source_uri.startswith(UPLOAD_SCHEME):
        await state.jobs.write(discard_unused_original, state, doc.content_hash, doc.filename)
    return Response(status_code=204)


@router.post("/{doc_id}/reindex", status_code=202)
async def reindex(doc_id: str, response: Response, state: StateDep, tenant: WriterDep,
                  kb: KnowledgeBaseDep) -> JobPublic:
    """Chunks, embeds and indexes the document again from its original (after a chunking or model change).

    The re-indexed version gets a new `doc_id` (in the job's report); its metadata is kept.
    """
    doc = await asyncio.to_thread(_document, state, tenant, kb, doc_id)
    try:
        source_path(state, doc)
    except JobFailed as exc:
        raise HTTPException(409, str(exc)) from None
    job = await state.jobs.submit(tenant, kb.name, JobKind.REINDEX, doc.filename,
                                  partial(reindex_document, state, tenant, kb, doc.id))
    return accepted(job, response)


@router.get("/{doc_id}/acl")
async def get_acl(kb: KnowledgeBaseDep, doc_id: str, state: StateDep, caller: PrincipalDep) -> AclPublic:
    """Who may read the document: `*` (the whole tenant), `user:<id>` and `group:<name>` entries."""
    def load() -> AclPublic:
        doc = _document(state, caller.tenant, kb, doc_id, caller.readers)
        with state.stack.sessions() as session:
            return AclPublic(doc_id=doc.id, acl=list(acls_of(session, [doc.id])[doc.id]))

    return await asyncio.to_thread(load)


@router.put("/{doc_id}/acl")
async def put_acl(doc_id: str, body: AclBody, state: StateDep, tenant: WriterDep, kb: KnowledgeBaseDep) -> AclPublic:
    """Replaces who may read the document, in the metadata DB and in every engine's payload (nothing is
    embedded again); the next query sees the change."""
    try:
        entries = parse_acl(body.acl)
    except InvalidAcl as exc:
        raise HTTPException(422, f"acl: {exc}") from None
    doc = await asyncio.to_thread(_document, state, tenant, kb, doc_id)
    stored = await state.jobs.write(state.ingestor.set_acl, tenant, doc.kb_id, doc.id, entries)
    if stored is None:  # deleted or replaced meanwhile
        raise HTTPException(404, f"document {doc_id!r} does not exist in knowledge base {kb.name!r}")
    return AclPublic(doc_id=doc.id, acl=list(stored))


@router.get("/{doc_id}/chunks/{chunk_id}/image", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
async def chunk_image(kb: KnowledgeBaseDep, doc_id: str, chunk_id: str, state: StateDep, caller: PrincipalDep) -> Response:
    """The part of the page a chunk of an image or a scan was read from (JPEG), cut from the original.

    404 for a chunk not read from a page (plain text) or of a document the caller may not read, 409
    when the original is gone or has changed."""
    tenant = caller.tenant

    def render() -> bytes:
        doc = _document(state, tenant, kb, doc_id, caller.readers)
        with state.stack.sessions() as session:
            meta = crud.chunk_location(session, tenant, doc.id, chunk_id)
        if not meta:
            raise HTTPException(404, f"chunk {chunk_id!r} of document {doc_id!r} was not read from a page image")
        try:
            return region_jpeg(state.settings.home, doc, meta)
        except (OriginalUnavailable, LoaderError) as exc:  # gone, changed, or over a limit lowered since
            raise HTTPException(409, str(exc)) from None

    return Response(await asyncio.to_thread(render), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})
