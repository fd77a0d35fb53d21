"""Dependencies the routers share: the app state and the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sieve.api.auth import authenticate
from sieve.api.state import AppState

_bearer = HTTPBearer(auto_error=False, description="An API key from `sieve keys create --tenant T`.")


def get_state(request: Request) -> AppState:
    return request.app.state.sieve


StateDep = Annotated[AppState, Depends(get_state)]


async def get_tenant(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    return await authenticate(request, state, credentials)


TenantDep = Annotated[str, Depends(get_tenant)]
"""The caller's tenant: every store call of a request is scoped to it, never to a body field."""
