"""An MCP server (official `mcp` SDK; mcp 2 calls FastMCP `MCPServer`) with the graph's two tools.

The tools' parameters are generated from the same argument models as `GET /v1/tools`, so the MCP
and OpenAI views of a tool cannot drift apart. `sieve mcp` serves it over stdio; the server at
`/mcp` over streamable HTTP (`api/mcp_http.py`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from langchain_core.tools import ToolException
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.exceptions import HTTPException

from sieve.tools.graph_tool import TOOLS, KnowledgeTools, invoke

# failures the calling model can act on (unknown KB, empty question), from either kind of backend
_EXPECTED = (ToolException, HTTPException, LookupError, ValueError)

INSTRUCTIONS = (
    "Sieve answers questions from knowledge bases with cited sources. Use `ask` for an answer with "
    "citations (or a refusal with its reason), `search_knowledge_base` to read the passages yourself."
)


ToolsFor = Callable[[Mapping[str, str] | None], Awaitable[KnowledgeTools]]
"""The backend for one call, from its HTTP headers (None over stdio): the key names the tenant."""


def _tool_function(tools_for: ToolsFor, name: str) -> Any:
    model = TOOLS[name][0]

    async def run(ctx: Context, **arguments: Any) -> dict[str, Any]:
        try:
            return await invoke(await tools_for(ctx.headers), name, arguments)
        except _EXPECTED as exc:  # MCP hides other errors' text from the client
            raise ToolError(str(getattr(exc, "detail", None) or exc)) from exc

    # MCP reads a tool's schema from its signature: build that signature from the argument model;
    # the context parameter is found by its annotation and left out of the schema
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context),
            *(
                inspect.Parameter(
                    field, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[info.annotation, info],
                    default=inspect.Parameter.empty if info.is_required() else info.default,
                )
                for field, info in model.model_fields.items()
            ),
        ],
        return_annotation=dict[str, Any],
    )
    run.__annotations__ = {"ctx": Context, "return": dict[str, Any]}
    run.__name__ = name
    return run


def build_mcp_server(tools: KnowledgeTools) -> MCPServer:
    """One backend for every call (`sieve mcp` over stdio)."""

    async def fixed(_: Mapping[str, str] | None) -> KnowledgeTools:
        return tools

    return build_mcp_server_per_call(fixed)


def build_mcp_server_per_call(tools_for: ToolsFor) -> MCPServer:
    """A backend chosen per call from its headers (the server's `/mcp`, `api/mcp_http.py`)."""
    server = MCPServer("sieve", instructions=INSTRUCTIONS)
    for name, (_, description) in TOOLS.items():
        server.add_tool(_tool_function(tools_for, name), name=name, description=description)
    return server
