"""Tenants and knowledge bases: lookups with errors a user can act on."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sieve.errors import Conflict, NotFound
from sieve.stores.acl import where_readable
from sieve.stores.metadata import Document, DocumentStatus, KnowledgeBase, Tenant
from sieve.stores.names import check_kb_name


class KnowledgeBaseNotFound(NotFound):
    def __init__(self, tenant: str, name: str):
        super().__init__(f"knowledge base {name!r} does not exist")
        self.tenant, self.name = tenant, name


class KnowledgeBaseNotEmpty(Conflict, RuntimeError):
    def __init__(self, tenant: str, name: str):
        super().__init__(f"knowledge base {name!r} received documents while it was being deleted; delete it again")
        self.tenant, self.name = tenant, name


def ensure_tenant(session: Session, tenant: str) -> Tenant:
    row = session.get(Tenant, tenant)
    if row is None:
        row = Tenant(id=tenant, name=tenant)
        session.add(row)
        session.flush()
    return row


def find_kb(session: Session, tenant: str, name: str) -> KnowledgeBase | None:
    return session.scalar(
        select(KnowledgeBase).where(KnowledgeBase.tenant_id == tenant, KnowledgeBase.name == name)
    )


def get_kb(session: Session, tenant: str, name: str) -> KnowledgeBase:
    kb = find_kb(session, tenant, name)
    if kb is None:
        raise KnowledgeBaseNotFound(tenant, name)
    return kb


def get_or_create_kb(session: Session, tenant: str, name: str) -> KnowledgeBase:
    """The tenant's knowledge base `name`, created when missing (InvalidKnowledgeBaseName if `name` breaks
    the naming rule; an existing one is found whatever its name)."""
    kb = find_kb(session, tenant, name)
    if kb is None:
        check_kb_name(name)
        ensure_tenant(session, tenant)
        kb = KnowledgeBase(tenant_id=tenant, name=name)
        session.add(kb)
        session.flush()
    return kb


def kbs_with_counts(
    session: Session, tenant: str, readers: frozenset[str] | None = None
) -> list[tuple[KnowledgeBase, int]]:
    """The tenant's knowledge bases by name, each with its number of ready documents `readers` may read."""
    counts = readable_counts(session, tenant, readers)
    return [(kb, counts.get(kb.id, (0, 0))[0]) for kb in list_kbs(session, tenant)]


def readable_counts(session: Session, tenant: str, readers: frozenset[str] | None = None) -> dict[str, tuple[int, int]]:
    """Per knowledge base id: the ready documents `readers` may read, and their chunks."""
    rows = session.execute(where_readable(
        select(Document.kb_id, func.count(), func.coalesce(func.sum(Document.chunk_count), 0))
        .where(Document.tenant_id == tenant, Document.status == DocumentStatus.READY)
        .group_by(Document.kb_id), readers)
    ).all()
    return {kb_id: (int(documents), int(chunks)) for kb_id, documents, chunks in rows}


def list_kbs(session: Session, tenant: str) -> list[KnowledgeBase]:
    return list(
        session.scalars(select(KnowledgeBase).where(KnowledgeBase.tenant_id == tenant).order_by(KnowledgeBase.name))
    )
