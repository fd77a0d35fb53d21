"""API keys: created once and shown once, stored as sha256, each mapped to one tenant.

Keys are 256 random bits, so a plain sha256 is as strong as a slow password hash here and costs
microseconds per request; a leaked database does not reveal usable keys.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

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


def create_api_key(session: Session, tenant: str, name: str = "") -> str:
    """A new key for `tenant` (created if missing); the returned key is not stored anywhere."""
    if not tenant or len(tenant) > 64:
        raise ValueError("tenant must be 1-64 characters")
    ensure_tenant(session, tenant)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(tenant_id=tenant, key_hash=hash_key(key), prefix=key[:_SHOWN_PREFIX], name=name))
    session.flush()
    return key


def tenant_for_key(session: Session, key: str) -> str | None:
    """The tenant of a valid, unrevoked key; None for anything else."""
    return session.scalar(
        select(ApiKey.tenant_id).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )


def list_api_keys(session: Session, tenant: str | None = None) -> list[KeyInfo]:
    stmt = select(ApiKey).order_by(ApiKey.created_at)
    if tenant is not None:
        stmt = stmt.where(ApiKey.tenant_id == tenant)
    return [
        KeyInfo(k.prefix, k.tenant_id, k.name, k.created_at, k.revoked_at is not None) for k in session.scalars(stmt)
    ]


def revoke_api_key(session: Session, key_or_prefix: str) -> bool:
    """Revokes one key, named by the whole key or by the prefix `sieve keys list` shows."""
    if len(key_or_prefix) < _SHOWN_PREFIX:
        raise ValueError(f"give the key or at least its first {_SHOWN_PREFIX} characters, as `sieve keys list` shows")
    match = (
        ApiKey.prefix == key_or_prefix
        if len(key_or_prefix) == _SHOWN_PREFIX
        else ApiKey.key_hash == hash_key(key_or_prefix)
    )
    rows = session.scalars(select(ApiKey).where(match, ApiKey.revoked_at.is_(None))).all()
    if len(rows) > 1:
        raise ValueError(f"{len(rows)} keys start with {key_or_prefix}; give the whole key")
    for row in rows:
        row.revoked_at = utcnow()
    return bool(rows)
