"""The FastAPI app: routers, the chat page, and a lifespan that owns one stack for one `SIEVE_HOME`.

Run it as a single worker (`sieve serve`): the embedded engines are owned by one process.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from sieve.api.errors import install_error_handlers
from sieve.api.hosts import HostCheck, allowed_hosts
from sieve.api.mcp_http import AuthenticatedMcp
from sieve.api.metrics import Metrics, RequestCounter
from sieve.api.routes import (
    agent,
    chat,
    citations,
    documents,
    evaluations,
    graph,
    health,
    jobs,
    knowledge_bases,
    research,
    tools,
)
from sieve.api.server_record import remove_server_record, write_server_record
from sieve.api.state import AppState
from sieve.settings import Settings, get_settings
from sieve.stores.stack import Stack

WEB = Path(__file__).resolve().parent / "web"


def create_app(settings: Settings | None = None, stack: Stack | None = None) -> FastAPI:
    """The app over `settings.home`; a given `stack` stays the caller's to close."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = stack if stack is not None else await asyncio.to_thread(Stack, settings)
        try:
            if settings.server_url:  # first: a second server on this home fails before touching its engines
                write_server_record(settings.home, settings.server_url, auth=not settings.auth_disabled)
            shutil.rmtree(settings.home / "uploads" / ".incoming", ignore_errors=True)  # a killed server's leftovers
            app.state.sieve = await AppState.open(settings, own, metrics)
            try:
                async with mcp.lifespan():
                    yield
            finally:
                await evaluations.stop_evaluations(app.state.sieve)
                await app.state.sieve.close()
        finally:
            remove_server_record(settings.home)
            if stack is None:
                own.close()

    app = FastAPI(title="Sieve", summary="Agentic RAG over your knowledge bases.", version="0.1.0",
                  lifespan=lifespan)
    install_error_handlers(app)
    for module in (chat, agent, research, knowledge_bases, documents, evaluations, citations, graph, jobs, tools,
                   health):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=WEB), name="web")
    app.add_api_route("/", lambda: FileResponse(WEB / "index.html"), include_in_schema=False)
    app.add_api_route("/console", lambda: FileResponse(WEB / "console.html"), include_in_schema=False)
    hosts = allowed_hosts(settings)
    mcp = AuthenticatedMcp(app, hosts)
    # POST only: stateless MCP has no session for a GET event stream to follow, nor for a DELETE to end (405)
    # a Route, not add_route (typed for request handlers): an ASGI app as the endpoint is passed the raw scope
    app.router.routes.append(Route("/mcp", mcp, methods=["POST"], include_in_schema=False))
    app.add_middleware(HostCheck, hosts=hosts)
    app.add_middleware(RequestCounter, metrics=metrics)  # outermost: refused hosts are counted too
    return app
