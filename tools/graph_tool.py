"""The graph as a tool for other agents: `list_knowledge_bases`, `search_knowledge_base`, `ask` and
`research_knowledge_base` (the deep-research graph).

One definition of each tool (its argument model and description) feeds the OpenAI tool schemas
(`GET /v1/tools`), the LangChain `StructuredTool`s below and the MCP server (`tools/mcp_server.py`).
Where the tools run is a `KnowledgeTools` backend: in the server's process (`api/knowledge.py`), or
over HTTP against a running server (`HttpKnowledgeTools`), with the caller's API key naming the tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import httpx
from langchain_core.tools import StructuredTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, description="What to look for, in the user's words (any language).")
    kb: str = Field(min_length=1, description="Name of the knowledge base to search.")
    k: int = Field(5, ge=1, le=50, description="How many passages to return.")


class AskArgs(BaseModel):
    question: str = Field(min_length=1, description="The question, in the user's words (any language).")
    kb: str = Field(min_length=1, description="Name of the knowledge base to answer from.")
    thread_id: str | None = Field(
        None, max_length=200, description="Continue this conversation: follow-up questions resolve against it."
    )


class ResearchArgs(BaseModel):
    question: str = Field(min_length=1, description=(
        "A question that needs several lookups: a comparison, an enumeration, or a chain (the company a person "
        "works for, then where it is headquartered). Any language."))
    kb: str = Field(min_length=1, description="Name of the knowledge base to research.")


class ListArgs(BaseModel):
    """No arguments: the caller's key decides whose knowledge bases are listed."""


TOOLS: dict[str, tuple[type[BaseModel], str]] = {
    "list_knowledge_bases": (
        ListArgs,
        "The knowledge bases you can search or ask, with their descriptions and document counts. Call it "
        "first when you do not know which knowledge base (`kb`) answers the user's question.",
    ),
    "search_knowledge_base": (
        SearchArgs,
        "Hybrid search (BM25 + dense) over one knowledge base. Returns the best passages with their "
        "document, file name and relevance; use it to read sources yourself.",
    ),
    "ask": (
        AskArgs,
        "Answer a question from one knowledge base with numbered citations [n] (each with its quoted "
        "passage), or refuse with a reason when the knowledge base does not answer it.",
    ),
    "research_knowledge_base": (
        ResearchArgs,
        "Deep research: splits the question into sub-questions, retrieves for each (following entities from "
        "one document to the next) within a time budget, and returns a report with one cited section per "
        "sub-question, the parts nothing supports named as refused, the steps taken and why it stopped.",
    ),
}


class KnowledgeTools(Protocol):
    """Where the tools run. Results are plain JSON: the knowledge bases, hits for search, the turn's result for ask."""

    async def list_knowledge_bases(self, args: ListArgs) -> dict[str, Any]: ...

    async def search_knowledge_base(self, args: SearchArgs) -> dict[str, Any]: ...

    async def ask(self, args: AskArgs) -> dict[str, Any]: ...

    async def research_knowledge_base(self, args: ResearchArgs) -> dict[str, Any]: ...


async def invoke(tools: KnowledgeTools, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Runs a tool call by name with JSON arguments (a pydantic ValidationError when they are wrong)."""
    if name not in TOOLS:
        raise KeyError(name)
    args = TOOLS[name][0].model_validate(arguments)
    return await getattr(tools, name)(args)  # the backend's methods are named after the tools


def openai_tools(kb_names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """OpenAI `tools=` entries; with `kb_names`, the `kb` argument is limited to them."""
    schemas = []
    for name, (model, description) in TOOLS.items():
        parameters = convert_to_openai_tool(model)["function"]["parameters"]
        if kb_names and "kb" in parameters["properties"]:
            parameters["properties"]["kb"]["enum"] = list(kb_names)
        schemas.append({"type": "function", "function": {"name": name, "description": description,
                                                         "parameters": parameters}})
    return schemas


def structured_tools(tools: KnowledgeTools) -> list[StructuredTool]:
    """The tools as LangChain `StructuredTool`s; failures come back to the model as tool text."""

    async def list_knowledge_bases(**kwargs: Any) -> dict[str, Any]:
        return await tools.list_knowledge_bases(ListArgs(**kwargs))

    async def search_knowledge_base(**kwargs: Any) -> dict[str, Any]:
        return await tools.search_knowledge_base(SearchArgs(**kwargs))

    async def ask(**kwargs: Any) -> dict[str, Any]:
        return await tools.ask(AskArgs(**kwargs))

    async def research_knowledge_base(**kwargs: Any) -> dict[str, Any]:
        return await tools.research_knowledge_base(ResearchArgs(**kwargs))

    return [
        StructuredTool.from_function(coroutine=fn, name=name, description=TOOLS[name][1], args_schema=TOOLS[name][0],
                                     handle_tool_error=True)
        for name, fn in (("list_knowledge_bases", list_knowledge_bases), ("search_knowledge_base", search_knowledge_base),
                         ("ask", ask), ("research_knowledge_base", research_knowledge_base))
    ]


class HttpKnowledgeTools:
    """The tools of a running Sieve server (`POST /v1/tools/{name}/invoke`), for agents elsewhere."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 120.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    async def _invoke(self, name: str, args: BaseModel) -> dict[str, Any]:
        response = await self._client.post(f"/v1/tools/{name}/invoke", json=args.model_dump())
        if response.is_error:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise ToolException(f"{name} failed ({response.status_code}): {message}")
        return response.json()

    async def list_knowledge_bases(self, args: ListArgs) -> dict[str, Any]:
        return await self._invoke("list_knowledge_bases", args)

    async def search_knowledge_base(self, args: SearchArgs) -> dict[str, Any]:
        return await self._invoke("search_knowledge_base", args)

    async def ask(self, args: AskArgs) -> dict[str, Any]:
        return await self._invoke("ask", args)

    async def research_knowledge_base(self, args: ResearchArgs) -> dict[str, Any]:
        return await self._invoke("research_knowledge_base", args)

    async def aclose(self) -> None:
        await self._client.aclose()
