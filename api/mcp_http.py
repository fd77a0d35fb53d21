"""MCP over streamable HTTP at `/mcp`: the knowledge-base tools and resources for agents that speak MCP.

The same tools as `sieve mcp` (stdio), with the API's authentication: this ASGI wrapper checks the
caller's key or token (or `--dev`'s loopback rule) before the MCP app sees the request, and hands the
caller (tenant, user, groups) on in a header of its own, which it first strips from what the client sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.security import HTTPBearer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from sieve.api.auth import authenticate_principal
from sieve.api.errors import sieve_error_response
from sieve.api.hosts import ANY
from sieve.api.knowledge import TenantKnowledge
from sieve.api.state import AppState
from sieve.errors import SieveError
from sieve.stores.acl import Principal
from sieve.tools.graph_tool import KnowledgeTools
from sieve.tools.mcp_server import build_mcp_server_per_call

CALLER_HEADER = "x-sieve-authenticated-caller"
_bearer = HTTPBearer(auto_error=False)


class AuthenticatedMcp:
    """The MCP app behind the API's key check; the caller travels in `CALLER_HEADER`."""

    def __init__(self, app: FastAPI, hosts: list[str]):
        self.app = app

        async def tools_for(headers: Mapping[str, str] | None) -> KnowledgeTools:
            caller = (headers or {}).get(CALLER_HEADER)
            if not caller:  # unreachable through `__call__`, which always sets it
                raise PermissionError("unauthenticated MCP call")
            fields = json.loads(caller)
            return TenantKnowledge(self._state, Principal(fields["tenant"], fields["user"], frozenset(fields["groups"])))

        # stateless and JSON: each POST is one exchange, so any worker restart loses no session
        self.mcp: Starlette = build_mcp_server_per_call(tools_for).streamable_http_app(
            streamable_http_path="/mcp", stateless_http=True, json_response=True,
            transport_security=_rebinding_protection(hosts),
        )

    @property
    def _state(self) -> AppState:
        return self.app.state.sieve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.mcp(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            caller = await authenticate_principal(request, self._state, await _bearer(request))
        except SieveError as exc:
            await sieve_error_response(exc)(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = [(k, v) for k, v in scope["headers"] if k.lower() != CALLER_HEADER.encode()]
        # ASCII JSON: a header value must be latin-1
        value = json.dumps({"tenant": caller.tenant, "user": caller.user, "groups": sorted(caller.groups)})
        scope = {**scope, "headers": [*headers, (CALLER_HEADER.encode(), value.encode())]}
        await self.mcp(scope, receive, send)

    def lifespan(self) -> Any:
        """The MCP session manager's task group; the app's lifespan enters it."""
        return self.mcp.router.lifespan_context(self.mcp)


def _rebinding_protection(hosts: list[str]) -> TransportSecuritySettings:
    """The SDK's Host and Origin checks over the server's allowed hosts (the app's HostCheck checks them
    first; this keeps /mcp guarded on its own). Any host allowed: nothing to check."""
    if ANY in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = [f"[{h}]" if ":" in h else h for h in hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[p for n in names for p in (n, f"{n}:*")],
        allowed_origins=[p for n in names for scheme in ("http", "https") for p in (f"{scheme}://{n}", f"{scheme}://{n}:*")],
    )
