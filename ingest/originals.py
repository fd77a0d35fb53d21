"""A document's original file: read again to re-index it, and to cut the page region a citation shows.

Uploads are kept as `SIEVE_HOME/uploads/<sha256><suffix>`; files ingested from disk are read where
they were (and must still hold the bytes that were indexed).
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import select

from sieve.errors import Conflict
from sieve.ingest.loaders import LoaderError
from sieve.stores.metadata import Chunk, Document, DocumentStatus

UPLOAD_SCHEME = "upload:"
log = logging.getLogger(__name__)


class OriginalUnavailable(Conflict, ValueError):
    """The original cannot be read (gone, changed, or never kept); the message names the document only."""


def original_path(home: Path, content_hash: str, filename: str) -> Path:
    return home / "uploads" / f"{content_hash}{Path(filename).suffix.lower()}"


def source_path(home: Path, doc: Document) -> Path:
    """Where the document's original can be read again."""
    if doc.source_uri.startswith(UPLOAD_SCHEME):
        path = original_path(home, doc.content_hash, doc.filename)
    elif doc.source_uri.startswith("file://"):
        path = Path(unquote(urlparse(doc.source_uri).path))
    else:
        raise OriginalUnavailable(
            f"{doc.filename} came from {doc.source_uri.split(':', 1)[0]}; ingest its corpus again instead")
    if not path.is_file():  # the message names the document, never the server's folders
        raise OriginalUnavailable(f"the original of {doc.filename} (document {doc.id}) is no longer available; "
                                  "upload it again instead")
    return path


def region_jpeg(home: Path, doc: Document, meta: dict[str, Any]) -> bytes:
    """The part of the page a chunk was read from (its `Chunk.meta`), as JPEG, cut from the original.

    `OriginalUnavailable` when the original is gone or changed; `LoaderError` when it no longer reads."""
    from sieve.ingest.ocr import OcrLimits, crop, page_image

    data = source_path(home, doc).read_bytes()
    if hashlib.sha256(data).hexdigest() != doc.content_hash:
        raise OriginalUnavailable(f"the original of {doc.filename} changed since it was indexed; re-index it")
    page = page_image(data, Path(doc.filename).suffix.lower(), meta["page"], OcrLimits.from_settings())
    boxes = [tuple(r["box"]) for r in meta["regions"] if r["page"] == meta["page"]]
    buffer = io.BytesIO()
    crop(page, boxes).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def chunk_region_jpeg(stack: Any, doc_id: str, chunk_id: str) -> bytes | None:
    """`region_jpeg` of a retrieved chunk, or None when it has no page or its original cannot be read."""
    with stack.sessions() as session:
        row = session.execute(
            select(Document, Chunk.meta).join(Chunk, Chunk.doc_id == Document.id)
            .where(Chunk.id == chunk_id, Document.id == doc_id, Document.status == DocumentStatus.READY)
        ).first()
    if row is None or not row.meta:
        return None
    try:
        return region_jpeg(stack.settings.home, row.Document, row.meta)
    except (OriginalUnavailable, LoaderError) as exc:  # the answer goes on from the text alone
        log.warning("no page image for chunk %s: %s", chunk_id, exc)
        return None
