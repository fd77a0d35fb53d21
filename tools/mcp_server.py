"""An MCP server (official `mcp` SDK; mcp 2 calls FastMCP `MCPServer`) with the graph's tools.

The tools' parameters are generated from the same argument models as `GET /v1/tools`, so the MCP
and OpenAI views of a tool cannot drift apart. A client discovers the caller's knowledge bases three
ways: the `list_knowledge_bases` tool, one resource per knowledge base (`kb://{name}`), and the tool
list itself, whose `kb` arguments name them. `sieve mcp` serves it over stdio; the server at `/mcp`
over streamable HTTP (`api/mcp_http.py`).
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any
from urllib.parse import quote, unquote

from langchain_core.tools import ToolException
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ListResourcesResult, ListToolsResult, Resource
from pydantic import ValidationError

from sieve.errors import SieveError
from sieve.tools.graph_tool import TOOLS, KnowledgeTools, ListArgs, invoke

# failures the calling model can act on (unknown KB, empty question, bad arguments), from either kind of backend
_EXPECTED = (ToolException, SieveError, ValidationError)

INSTRUCTIONS = (
    "Sieve answers questions from knowledge bases with cited sources. `list_knowledge_bases` says which "
    "knowledge bases there are (also readable as `kb://{name}` resources). Use `ask` for an answer with "
    "citations (or a refusal with its reason), `search_knowledge_base` to read the passages yourself, "
    "`research_knowledge_base` for a question that needs several lookups (a comparison, a chain of entities)."
)


ToolsFor = Callable[[Mapping[str, str] | None], Awaitable[KnowledgeTools]]
"""The backend for one call, from its HTTP headers (None over stdio): the key names the tenant."""


def _tool_function(tools_for: ToolsFor, name: str) -> Any:
    model = TOOLS[name][0]

    async def run(ctx: Context, **arguments: Any) -> dict[str, Any]:
        try:
            return await invoke(await tools_for(ctx.headers), name, arguments)
        except _EXPECTED as exc:  # MCP hides other errors' text from the client
            raise ToolError(str(exc)) from exc

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
    return KnowledgeMcpServer(tools_for)


def _kb_note(names: list[str]) -> str:
    if not names:
        return "No knowledge base exists yet."
    return "Knowledge bases: " + ", ".join(names) + "."


class KnowledgeMcpServer(MCPServer):
    """The tools, and the caller's knowledge bases as resources. Which knowledge bases a caller sees
    depends on its key, so tool and resource lists are built per request (MCPServer's list handlers
    are the per-request hooks: its public `list_tools` knows nothing of the request)."""

    def __init__(self, tools_for: ToolsFor):
        super().__init__("sieve", instructions=INSTRUCTIONS)
        self._tools_for = tools_for
        for name, (_, description) in TOOLS.items():
            self.add_tool(_tool_function(tools_for, name), name=name, description=description)

        @self.resource("kb://{name}", name="knowledge_base", mime_type="application/json",
                       description="A knowledge base: its description and how many documents it holds.")
        async def knowledge_base(name: str, ctx: Context) -> str:
            name = unquote(name)  # listed URIs quote names that are not URL-safe (中文, spaces)
            for kb in await self._knowledge_bases(ctx.headers):
                if kb["name"] == name:
                    return json.dumps(kb, ensure_ascii=False)
            raise ResourceError(f"knowledge base {name!r} does not exist")

    async def _knowledge_bases(self, headers: Mapping[str, str] | None) -> list[dict[str, Any]]:
        backend = await self._tools_for(headers)
        return (await backend.list_knowledge_bases(ListArgs()))["knowledge_bases"]

    async def _handle_list_tools(self, ctx: Any, params: Any) -> ListToolsResult:
        names = [kb["name"] for kb in await self._knowledge_bases(getattr(ctx.request, "headers", None))]
        tools = await self.list_tools()
        for tool in tools:
            if "kb" in tool.input_schema.get("properties", {}):
                tool.description = f"{tool.description} {_kb_note(names)}"
                if names:  # the model picks a valid name instead of guessing one
                    tool.input_schema = copy.deepcopy(tool.input_schema)
                    tool.input_schema["properties"]["kb"]["enum"] = names
        return ListToolsResult(tools=tools)

    async def _handle_list_resources(self, ctx: Any, params: Any) -> ListResourcesResult:
        kbs = await self._knowledge_bases(getattr(ctx.request, "headers", None))
        return ListResourcesResult(resources=[
            Resource(uri=f"kb://{quote(kb['name'], safe='')}", name=kb["name"], mime_type="application/json",
                     description=kb["description"] or f"Knowledge base with {kb['documents']} documents.")
            for kb in kbs
        ])
