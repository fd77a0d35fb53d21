"""Multipart uploads streamed to disk under a size limit: the file never sits whole in memory.

A refused upload (too large, unsupported type, malformed form) still reads the rest of the body,
up to a bound, before answering: a client that is still sending would otherwise see a broken pipe
instead of the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from sieve.errors import InvalidInput, SieveError, TooLarge, UnsupportedType
from sieve.ingest.loaders import SUPPORTED_SUFFIXES

if TYPE_CHECKING:  # python-multipart declares its callback types for type checkers only
    from python_multipart.multipart import MultipartCallbacks

_FIELD_LIMIT = 64 * 1024  # the metadata field: plenty for owner, tags and dates
_FIELDS = ("file", "metadata")


@dataclass
class StagedUpload:
    path: Path
    filename: str
    size: int
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)


class _Form:
    """python-multipart callbacks: the file part goes to `pending` (written to disk between chunks)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.headers: dict[bytes, bytes] = {}
        self._header = b""
        self._value = b""
        self.part: str | None = None
        self.filename: str | None = None
        self.size = 0
        self.digest = hashlib.sha256()
        self.pending: list[bytes] = []
        self.fields: dict[str, bytearray] = {}
        self.complete = False  # the closing boundary arrived: a body cut short never sets it

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._data, "on_end": self._end,
        }

    def _end(self) -> None:
        self.complete = True

    def _begin(self) -> None:
        self.headers, self.part = {}, None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self._header.lower()] = self._value
        self._header = self._value = b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name not in _FIELDS:
            raise InvalidInput(f"unexpected form field {name!r}; send `file` and optionally `metadata`")
        if name == "file":
            if self.filename is not None:
                raise InvalidInput("send one file per request")
            filename = Path(options.get(b"filename", b"").decode("utf-8", "replace")).name
            suffix = Path(filename).suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                what = f"file type {suffix}" if suffix else "a file without a suffix"
                raise UnsupportedType(f"unsupported {what}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
            self.filename = filename
        self.part = name
        self.fields.setdefault(name, bytearray())

    def _data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self.part == "file":
            self.size += len(piece)
            if self.size > self.max_bytes:
                raise TooLarge(f"the file is larger than the upload limit of {self.max_bytes} bytes")
            self.digest.update(piece)
            self.pending.append(piece)
        elif self.part is not None:
            if len(self.fields[self.part]) + len(piece) > _FIELD_LIMIT:
                raise TooLarge(f"form field {self.part!r} is larger than {_FIELD_LIMIT} bytes")
            self.fields[self.part] += piece


async def receive_upload(request: Request, incoming: Path, max_bytes: int) -> StagedUpload:
    """Streams the form's `file` into `incoming`; `InvalidInput` (`TooLarge`, `UnsupportedType`) with the
    reason when it cannot be taken."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise InvalidInput("send the document as multipart/form-data with a `file` field")
    drain_limit = 4 * max_bytes + _FIELD_LIMIT
    declared = int(request.headers.get("content-length") or 0)
    if declared > drain_limit:
        raise TooLarge(f"the upload is {declared} bytes; the limit is {max_bytes} bytes per file")

    form = _Form(max_bytes)
    parser = MultipartParser(params[b"boundary"], form.callbacks())
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / uuid.uuid4().hex
    received = 0
    body = request.stream()  # one generator: a refused upload drains the rest of it
    with path.open("wb") as out:
        try:
            async for chunk in body:
                received += len(chunk)
                parser.write(chunk)
                await _flush(out, form)
            parser.finalize()
            if not form.complete:  # finalize() does not check this (python-multipart 0.0.x)
                raise InvalidInput("the multipart form ends before its closing boundary: the upload was "
                                   "cut short; send it again")
        except (SieveError, MultipartParseError, ClientDisconnect) as exc:
            path.unlink(missing_ok=True)
            await _drain(body, received, drain_limit)
            if isinstance(exc, SieveError):
                raise
            if isinstance(exc, ClientDisconnect):  # nobody reads this, but it is no server error either
                raise InvalidInput("the client disconnected during the upload") from None
            raise InvalidInput(f"malformed multipart form: {exc}") from exc
        except BaseException:  # cancelled, or the disk failed: nothing staged stays behind
            path.unlink(missing_ok=True)
            raise
    if form.filename is None:
        path.unlink(missing_ok=True)
        raise InvalidInput("the form has no `file` field")
    return StagedUpload(path, form.filename, form.size, form.digest.hexdigest(), _metadata(form, path))


async def _flush(out: BinaryIO, form: _Form) -> None:
    if form.pending:
        data, form.pending = b"".join(form.pending), []
        await asyncio.to_thread(out.write, data)


async def _drain(body: AsyncIterator[bytes], received: int, limit: int) -> None:
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                return
    except Exception:  # the client is gone: nobody is left to read the reason
        return


def _metadata(form: _Form, path: Path) -> dict[str, Any]:
    raw = bytes(form.fields.get("metadata", b"")).strip()
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        path.unlink(missing_ok=True)
        raise InvalidInput("metadata must be a JSON object, e.g. {\"owner\": \"Ana\", \"tags\": [\"hr\"]}")
    return meta
