"""Dependencies the routers share: the app state, the caller (tenant and principal), the knowledge base of the path."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sieve.api.auth import authenticate_principal
from sieve.api.state import AppState
from sieve.stores.acl import Principal
from sieve.stores.crud import KbName, KnowledgeBaseRef, kb_id

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `sieve keys create --tenant T [--user U --groups a,b]`, or a JWT of the "
    "configured identity provider.",
)


def get_state(request: Request) -> AppState:
    return request.app.state.sieve


StateDep = Annotated[AppState, Depends(get_state)]


async def get_principal(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authenticate_principal(request, state, credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
"""The caller: its tenant scopes every store call, its readers every document it may see."""


async def get_tenant(principal: PrincipalDep) -> str:
    return principal.tenant


TenantDep = Annotated[str, Depends(get_tenant)]
"""The caller's tenant: every store call of a request is scoped to it, never to a body field."""


async def get_writer_tenant(principal: PrincipalDep) -> str:
    """The tenant of a tenant-wide caller: only they change knowledge bases, documents and access lists
    (a user's change could replace, or reveal by its counts, a document that user may not read)."""
    if principal.readers is not None:
        raise HTTPException(403, "this key or token reads as a user; changing knowledge bases and documents "
                                 "needs a tenant-wide key (`sieve keys create --tenant T` without --user)")
    return principal.tenant


WriterDep = Annotated[str, Depends(get_writer_tenant)]


async def get_knowledge_base(kb: Annotated[str, Path(description="Knowledge base name.")], state: StateDep,
                             tenant: TenantDep) -> KnowledgeBaseRef:
    def resolve() -> KnowledgeBaseRef:
        with state.stack.sessions() as session:
            return KnowledgeBaseRef(KbName(kb), kb_id(session, tenant, kb))

    return await asyncio.to_thread(resolve)


KnowledgeBaseDep = Annotated[KnowledgeBaseRef, Depends(get_knowledge_base)]
"""The `{kb}` of the path resolved once, before the route runs: an unknown name answers 404 (a writer's route
lists its `WriterDep` first, so a user's key hears 403 whatever the name)."""
