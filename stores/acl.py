"""Document access lists inside a tenant: who may read a document, and who is asking.

An access list is a set of entries: `*` (the whole tenant, the default), `user:<id>` or
`group:<name>`. A caller reads a document when its own entries (`Principal.readers`: `*`, its user
and its groups) share one with the document's list. The entries live in three places, kept equal:
the `document_acl` table (listings, NL2SQL, citations, the graph path) and every chunk's payload in
the text and vector engines, so each engine filters by them itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, overload

from more_itertools import chunked
from sqlalchemy import Exists, Select, delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from sieve.errors import InvalidInput
from sieve.stores.metadata import Chunk, Document, DocumentAcl, DocumentStatus
from sieve.stores.types import IndexedChunk, SearchFilter

TENANT = "*"
DEFAULT_ACL: tuple[str, ...] = (TENANT,)
_KINDS = ("user", "group")
_MAX_NAME = 200


class InvalidAcl(InvalidInput):
    """An access list that cannot be stored; the message says which entry and why."""


def parse_acl(spec: str | Iterable[str]) -> tuple[str, ...]:
    """`group:hr,user:zhang.wei` (or a list of entries) as sorted, distinct entries; `tenant` or `*` alone is the default."""
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec)]
    parts = [p for p in parts if p]
    if not parts:
        raise InvalidAcl("the access list is empty: give `tenant`, or entries like group:hr,user:zhang.wei")
    entries: set[str] = set()
    for part in parts:
        if part in ("*", "tenant"):
            entries.add(TENANT)
            continue
        kind, sep, name = part.partition(":")
        if not sep or kind not in _KINDS or not name.strip() or len(name) > _MAX_NAME:
            raise InvalidAcl(f"access-list entry {part!r}: write user:<id>, group:<name> or tenant")
        entries.add(f"{kind}:{name.strip()}")
    if TENANT in entries and len(entries) > 1:
        raise InvalidAcl("`tenant` already lets everyone in the tenant read; give it alone")
    return tuple(sorted(entries))


@dataclass(frozen=True)
class Principal:
    """Who is asking. `user` None and no groups is a tenant-wide caller (a key made without --user,
    `--dev`): it reads every document of its tenant, as before access lists existed."""

    tenant: str
    user: str | None = None
    groups: frozenset[str] = frozenset()

    @property
    def readers(self) -> frozenset[str] | None:
        if self.user is None and not self.groups:
            return None
        entries = {TENANT, *(f"group:{g}" for g in self.groups)}
        if self.user is not None:
            entries.add(f"user:{self.user}")
        return frozenset(entries)


_Stmt = TypeVar("_Stmt", bound="Select[*tuple[Any, ...]]")


@overload
def readable(readers: frozenset[str], doc_id_column: Any = ...) -> Exists: ...
@overload
def readable(readers: frozenset[str] | None, doc_id_column: Any = ...) -> Exists | None: ...
def readable(readers: frozenset[str] | None, doc_id_column: Any = Document.id) -> Exists | None:
    """SQL condition: the document behind `doc_id_column` is readable with `readers` (None: no condition)."""
    if readers is None:
        return None
    return exists().where(DocumentAcl.doc_id == doc_id_column, DocumentAcl.entry.in_(sorted(readers)))


def where_readable(stmt: _Stmt, readers: frozenset[str] | None, doc_id_column: Any = Document.id) -> _Stmt:
    condition = readable(readers, doc_id_column)
    return stmt if condition is None else stmt.where(condition)


def document_scope(session: Session, flt: SearchFilter) -> SearchFilter:
    """`flt` with its readers turned into an allow-list of the readable documents of its KB.

    For stores that hold no access lists (the graph): an entity's relations are then followed only
    through chunks of documents the caller may read."""
    if flt.readers is None:
        return flt
    stmt = where_readable(select(Document.id).where(
        Document.tenant_id == flt.tenant, Document.kb_id == flt.kb, Document.status == DocumentStatus.READY),
        flt.readers)
    ids = frozenset(session.scalars(stmt))
    if flt.doc_ids is not None:
        ids &= flt.doc_ids
    return replace(flt, doc_ids=ids, readers=None)


def write_acls_everywhere(sessions: sessionmaker[Session], engines: Sequence[Any], batch_docs: int = 200) -> int:
    """Every ready document's chunks with its access list, handed to each engine's `set_acl` (tantivy
    writes them again from their text; the vector engines set the payload): what a home written before
    access lists needs once. Returns the number of documents."""
    with sessions() as session:
        doc_ids = list(session.scalars(select(Document.id).where(Document.status == DocumentStatus.READY)))
    for batch in chunked(doc_ids, batch_docs):
        with sessions() as session:
            acls = acls_of(session, batch)
            chunks = [c for doc in session.scalars(select(Document).where(Document.id.in_(batch)))
                      for c in indexed_chunks(session, doc, acls[doc.id])]
        for engine in engines:
            engine.set_acl(chunks)
    return len(doc_ids)


def acl_of(session: Session, doc_id: str) -> tuple[str, ...]:
    entries = session.scalars(select(DocumentAcl.entry).where(DocumentAcl.doc_id == doc_id)).all()
    return tuple(sorted(entries)) or DEFAULT_ACL


def acls_of(session: Session, doc_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Access lists of many documents (default for any without rows)."""
    found: dict[str, list[str]] = {}
    for batch in chunked(doc_ids, 500):
        for doc_id, entry in session.execute(
            select(DocumentAcl.doc_id, DocumentAcl.entry).where(DocumentAcl.doc_id.in_(batch))
        ):
            found.setdefault(doc_id, []).append(entry)
    return {d: tuple(sorted(found.get(d, ()))) or DEFAULT_ACL for d in doc_ids}


def store_acl(session: Session, doc_id: str, acl: Sequence[str]) -> None:
    """Replace the document's rows (flushed, not committed)."""
    session.execute(delete(DocumentAcl).where(DocumentAcl.doc_id == doc_id))
    session.add_all(DocumentAcl(doc_id=doc_id, entry=e) for e in acl)
    session.flush()


def indexed_chunks(session: Session, doc: Document, acl: Sequence[str]) -> list[IndexedChunk]:
    """The document's chunks as the engines hold them, carrying `acl`."""
    rows = session.execute(select(Chunk.id, Chunk.text).where(Chunk.doc_id == doc.id).order_by(Chunk.ordinal))
    return [IndexedChunk(cid, doc.id, doc.tenant_id, doc.kb_id, text, tuple(acl)) for cid, text in rows]
