"""Who is calling: an API key or a JWT (`Authorization: Bearer ...`) names the tenant of every store
call and the principal (user and groups) whose document access lists apply.

API keys are ours (`sieve keys create`); anything else is read as a JWT of the deployment's identity
provider, accepted only when its signature verifies against the configured public key or JWKS file
and its audience, issuer and expiry hold. Its user and groups come from the claims the settings name.
`--dev` mode has no keys: every caller is the default tenant, so it serves loopback clients only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials

from sieve.api.state import AppState
from sieve.errors import PermissionDenied, Unauthenticated
from sieve.settings import Settings
from sieve.stores.acl import Principal
from sieve.stores.api_keys import KEY_PREFIX, principal_for_key

log = logging.getLogger(__name__)


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _lookup(state: AppState, key: str) -> Principal | None:
    with state.stack.sessions() as session:
        return principal_for_key(session, key)


class TokenRejected(Unauthenticated):
    """A JWT that is not accepted; the message is safe to show the caller."""


@lru_cache(maxsize=8)
def _key_file(path: Path, _mtime_ns: int) -> str:
    """A key file's text, read again when it changes (the IdP rotated its keys)."""
    return path.read_text()


def _signing_key(settings: Settings, token: str) -> Any:
    if settings.jwt_jwks_file is not None:
        text = _key_file(settings.jwt_jwks_file, settings.jwt_jwks_file.stat().st_mtime_ns)
        kid = jwt.get_unverified_header(token).get("kid")
        for key in jwt.PyJWKSet.from_json(text).keys:
            if kid is None or key.key_id == kid:
                return key.key
    if settings.jwt_public_key_file is not None:
        return _key_file(settings.jwt_public_key_file, settings.jwt_public_key_file.stat().st_mtime_ns)
    raise TokenRejected("the token's signing key is not among the configured keys")


def verify_jwt(settings: Settings, token: str) -> Principal:
    """The principal of a JWT whose signature, `exp`, `aud` and `iss` all check; else `TokenRejected`."""
    if settings.jwt_public_key_file is None and settings.jwt_jwks_file is None:
        raise TokenRejected("invalid or revoked API key")
    if not settings.jwt_audience or not settings.jwt_issuer:
        log.error("JWT keys are configured without SIEVE_JWT_AUDIENCE and SIEVE_JWT_ISSUER: no JWT is accepted")
        raise TokenRejected("this server accepts no JWTs until its audience and issuer are configured")
    s = settings
    try:
        claims = jwt.decode(
            token, _signing_key(s, token), algorithms=s.jwt_algorithms, audience=s.jwt_audience, issuer=s.jwt_issuer,
            options={"require": ["exp", "aud", "iss", s.jwt_user_claim]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("the token has expired") from None
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"invalid token: {exc}") from None
    user, groups = claims[s.jwt_user_claim], claims.get(s.jwt_groups_claim, [])
    tenant = claims.get(s.jwt_tenant_claim, s.default_tenant)
    if not isinstance(user, str) or not user:
        raise TokenRejected(f"claim {s.jwt_user_claim} must name the user")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise TokenRejected(f"claim {s.jwt_groups_claim} must be a list of group names")
    if not isinstance(tenant, str) or not tenant:
        raise TokenRejected(f"claim {s.jwt_tenant_claim} must name the tenant")
    return Principal(tenant, user, frozenset(groups))


async def authenticate_principal(
    request: Request, state: AppState, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller, or 401/403 with the reason."""
    if state.settings.auth_disabled:
        if not _is_loopback(request.client.host if request.client else None):
            raise PermissionDenied("this server runs in --dev mode and serves only this machine")
        return Principal(state.settings.default_tenant)
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("missing API key: send `Authorization: Bearer <key>` (`sieve keys create`)")
    token = credentials.credentials
    if token.startswith(KEY_PREFIX):
        principal = await asyncio.to_thread(_lookup, state, token)
        if principal is None:
            raise Unauthenticated("invalid or revoked API key")
        return principal
    return await asyncio.to_thread(verify_jwt, state.settings, token)
