"""API keys: created once and shown once, stored as sha256, each mapped to one tenant and principal.

Keys are 256 random bits, so a plain sha256 is as strong as a slow password hash here and costs
microseconds per request; a leaked database does not reveal usable keys.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sieve.errors import InvalidInput
from sieve.stores.acl import Principal
from sieve.stores.catalog import ensure_tenant
from sieve.stores.metadata import ApiKey, utcnow

KEY_PREFIX = "sk-sieve-"
_SHOWN_PREFIX = len(KEY_PREFIX) + 6


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """What listings show: never the key itself."""

    prefix: str
    tenant: str
    name: str
    created_at: datetime
    revoked: bool
    user: str | None = None
    groups: tuple[str, ...] = ()


def create_api_key(
    session: Session, tenant: str, name: str = "", user: str | None = None, groups: Sequence[str] = ()
) -> str:
    """A new key for `tenant` (created if missing), speaking for `user` in `groups` when given (else
    for the whole tenant); the returned key is not stored anywhere."""
    if not tenant or len(tenant) > 64:
        raise InvalidInput("tenant must be 1-64 characters")
    for value in (user, *groups):
        if value is not None and (not value.strip() or len(value) > 200 or "," in value):
            raise InvalidInput(f"user and group names must be 1-200 characters without commas, got {value!r}")
    ensure_tenant(session, tenant)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(tenant_id=tenant, key_hash=hash_key(key), prefix=key[:_SHOWN_PREFIX], name=name,
                       user_id=user, groups=sorted({g.strip() for g in groups})))
    session.flush()
    return key


def principal_for_key(session: Session, key: str) -> Principal | None:
    """Who a valid, unrevoked key speaks for; None for anything else."""
    row = session.execute(
        select(ApiKey.tenant_id, ApiKey.user_id, ApiKey.groups).where(
            ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).first()
    return None if row is None else Principal(row.tenant_id, row.user_id, frozenset(row.groups or ()))


def list_api_keys(session: Session, tenant: str | None = None) -> list[KeyInfo]:
    stmt = select(ApiKey).order_by(ApiKey.created_at)
    if tenant is not None:
        stmt = stmt.where(ApiKey.tenant_id == tenant)
    return [
        KeyInfo(k.prefix, k.tenant_id, k.name, k.created_at, k.revoked_at is not None, k.user_id, tuple(k.groups or ()))
        for k in session.scalars(stmt)
    ]


def revoke_api_key(session: Session, key_or_prefix: str) -> bool:
    """Revokes one key, named by the whole key or by the prefix `sieve keys list` shows."""
    if len(key_or_prefix) < _SHOWN_PREFIX:
        raise InvalidInput(f"give the key or at least its first {_SHOWN_PREFIX} characters, as `sieve keys list` shows")
    match = (
        ApiKey.prefix == key_or_prefix
        if len(key_or_prefix) == _SHOWN_PREFIX
        else ApiKey.key_hash == hash_key(key_or_prefix)
    )
    rows = session.scalars(select(ApiKey).where(match, ApiKey.revoked_at.is_(None))).all()
    if len(rows) > 1:
        raise InvalidInput(f"{len(rows)} keys start with {key_or_prefix}; give the whole key")
    for row in rows:
        row.revoked_at = utcnow()
    return bool(rows)
