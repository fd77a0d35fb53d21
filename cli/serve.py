"""`sieve serve` (the HTTP API) and `sieve mcp` (the tools over MCP stdio)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from sieve.cli.common import TenantOpt, current_settings, err, friendly_errors, open_stack, tenant_or_default
from sieve.errors import InvalidInput, Unauthenticated
from sieve.settings import Settings


@friendly_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 = any free port).", min=0, max=65535)] = 8000,
    dev: Annotated[bool, typer.Option("--dev", help="Local-only mode without API keys (binds 127.0.0.1).")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API, the chat page and /metrics from this home, as one process."""
    import ipaddress
    import socket

    import uvicorn

    from sieve.server import create_app

    if dev and host not in ("127.0.0.1", "localhost"):
        raise InvalidInput("--dev has no API keys, so it serves only this machine: drop --host")
    # bind first, so the URL recorded for CLI commands on this home is the real one (port 0 included)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_host, bound_port = sock.getsockname()[:2]
    try:
        local = "127.0.0.1" if ipaddress.ip_address(bound_host).is_unspecified else bound_host
    except ValueError:
        local = bound_host
    url = f"http://[{local}]:{bound_port}" if ":" in local else f"http://{local}:{bound_port}"
    settings = current_settings().model_copy(update={"auth_disabled": dev, "server_url": url})
    _check_profiles(settings)  # a refusal on one line and exit 78 here, not a traceback from the app's start-up
    if not dev and not _any_api_key():
        err.print("[yellow]no API keys yet:[/yellow] create one with `sieve keys create --tenant T`")
    err.print(f"Sieve at {url}{' (dev mode: no API key, this machine only)' if dev else ''}; home {settings.home}")
    config = uvicorn.Config(create_app(settings), log_level=log_level, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def _check_profiles(settings: Settings) -> None:
    from sieve.retrievers.profile import require_deployable_profiles

    with open_stack() as stack:
        require_deployable_profiles(stack.sessions, settings)


def _any_api_key() -> bool:
    from sieve.stores.api_keys import list_api_keys

    with open_stack() as stack, stack.sessions() as session:
        return any(not k.revoked for k in list_api_keys(session))


@friendly_errors
def mcp_serve(
    tenant: TenantOpt = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="SIEVE_API_KEY", help="Key for a served home (or SIEVE_API_KEY).")
    ] = None,
) -> None:
    """Serve the knowledge-base tools (list, search, ask, research) and resources over MCP (stdio).

    When `sieve serve` runs on this home the tools go through it (its key names the tenant);
    otherwise they run in this process over the home's stores.
    """
    from sieve.api.server_record import read_server_record
    from sieve.tools.graph_tool import HttpKnowledgeTools
    from sieve.tools.mcp_server import build_mcp_server

    settings = current_settings()
    record = read_server_record(settings.home)
    if record is not None:
        if record.auth and not api_key:
            raise Unauthenticated(f"{settings.home} is served at {record.url}: set SIEVE_API_KEY or --api-key")
        asyncio.run(build_mcp_server(HttpKnowledgeTools(record.url, api_key)).run_stdio_async())
        return
    asyncio.run(_mcp_in_process(settings, tenant_or_default(tenant)))


async def _mcp_in_process(settings: Settings, tenant: str) -> None:
    from sieve.api.knowledge import TenantKnowledge
    from sieve.api.metrics import Metrics
    from sieve.api.state import AppState
    from sieve.stores.acl import Principal
    from sieve.stores.stack import Stack
    from sieve.tools.mcp_server import build_mcp_server

    with Stack(settings) as stack:
        state = await AppState.open(settings, stack, Metrics())
        try:
            await build_mcp_server(TenantKnowledge(state, Principal(tenant))).run_stdio_async()
        finally:
            await state.close()
