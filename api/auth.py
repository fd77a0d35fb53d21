"""Who is calling: an API key (`Authorization: Bearer <key>`) names the tenant of every store call.

`--dev` mode has no keys: every caller is the default tenant, so it serves loopback clients only.
"""

from __future__ import annotations

import asyncio
import ipaddress

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials

from sieve.api.state import AppState
from sieve.stores.api_keys import tenant_for_key

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _lookup(state: AppState, key: str) -> str | None:
    with state.stack.sessions() as session:
        return tenant_for_key(session, key)


async def authenticate(request: Request, state: AppState, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The caller's tenant, or 401/403 with the reason."""
    if state.settings.auth_disabled:
        if not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(403, "this server runs in --dev mode and serves only this machine")
        return state.settings.default_tenant
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(401, "missing API key: send `Authorization: Bearer <key>` (`sieve keys create`)",
                            headers=_CHALLENGE)
    tenant = await asyncio.to_thread(_lookup, state, credentials.credentials)
    if tenant is None:
        raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
    return tenant
