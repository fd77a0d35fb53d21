"""The graph as a tool: OpenAI tool schemas, and running a tool call the caller's model made."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import ValidationError

from sieve.api.deps import PrincipalDep, StateDep
from sieve.api.knowledge import TenantKnowledge
from sieve.api.schemas import ToolsPublic
from sieve.tools.graph_tool import TOOLS, invoke, openai_tools

router = APIRouter(prefix="/v1/tools", tags=["tools"])


@router.get("")
async def list_tools(state: StateDep, caller: PrincipalDep) -> ToolsPublic:
    """The knowledge-base tools as OpenAI `tools=` entries; `kb` lists this key's knowledge bases."""
    kbs = await TenantKnowledge(state, caller).knowledge_bases()
    return ToolsPublic(tools=openai_tools([kb.name for kb in kbs]))


@router.post("/{name}/invoke")
async def invoke_tool(name: str, state: StateDep, caller: PrincipalDep,
                      arguments: dict[str, Any] = Body(description="The tool call's arguments.")) -> dict[str, Any]:
    if name not in TOOLS:
        raise HTTPException(404, f"unknown tool {name!r}; tools: {', '.join(TOOLS)}")
    try:
        return await invoke(TenantKnowledge(state, caller), name, arguments)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, f"bad arguments for {name}: {problems}") from None
