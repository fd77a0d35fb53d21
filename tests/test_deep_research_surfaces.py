"""Deep research where users reach it: `sieve research` (alone and through a served home), the native SSE
stream, the OpenAI endpoint (`model="research:<kb>"`) and the `research_knowledge_base` tool over MCP.

Real `sieve` and `sieve serve --dev` processes on loopback over the graph tests' company wiki.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from mcp import Client
from test_server_cli import serving, sieve

from sieve.tools.graph_tool import HttpKnowledgeTools
from sieve.tools.mcp_server import build_mcp_server

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).with_name("kg_corpus")
COMPARISON = "星河科技和云帆网络的总部分别在哪里？"


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, kind, data = [], "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((kind, json.loads("\n".join(data)) if data[0] != "[DONE]" else {}))
            kind, data = "message", []
    return events


def assert_two_cited_sections(result: dict) -> None:
    research = result["research"]
    assert research["stop_reason"] == "answered"
    assert [s["question"] for s in research["sections"]] == ["星河科技的总部在哪里？", "云帆网络的总部在哪里？"]
    assert {c["filename"] for c in result["citations"]} == {"xinghe-company.md", "yunfan-company.md"}


async def test_research_from_the_cli_the_stream_the_openai_endpoint_and_mcp(tmp_path):
    ingested = sieve(tmp_path, "ingest", str(CORPUS), "--kb", "wiki", "--json")
    assert ingested.returncode == 0, ingested.stderr

    alone = sieve(tmp_path, "research", COMPARISON, "--kb", "wiki", "--json")
    assert alone.returncode == 0, alone.stderr
    assert_two_cited_sections(json.loads(alone.stdout))
    shown = sieve(tmp_path, "research", COMPARISON, "--kb", "wiki")
    assert "stopped: answered" in shown.stdout and "杭州" in shown.stdout and "[2] yunfan-company.md" in shown.stdout
    unknown = sieve(tmp_path, "research", COMPARISON, "--kb", "nope")
    assert unknown.returncode != 0 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr

    with serving(tmp_path, "--dev") as url:
        served = sieve(tmp_path, "research", COMPARISON, "--kb", "wiki", "--json")  # through the server
        assert served.returncode == 0, served.stderr
        assert_two_cited_sections(json.loads(served.stdout))

        with httpx.Client(base_url=url, timeout=120) as client:
            with client.stream("POST", "/v1/research/stream", json={"question": COMPARISON, "kb": "wiki"}) as response:
                events = sse_events(response)
            kinds = [kind for kind, _ in events]
            assert kinds[0] == "plan" and kinds[-1] == "done" and kinds.index("stop") < kinds.index("token")
            # one step per sub-query, as each finishes (in parallel: either may be first)
            assert sorted(data["query"] for kind, data in events if kind == "step") == [
                "云帆网络的总部在哪里？", "星河科技的总部在哪里？"]
            assert client.post("/v1/research/stream", json={"question": " ", "kb": "wiki"}).status_code == 400

            body = {"model": "research:wiki", "stream": True, "messages": [{"role": "user", "content": COMPARISON}]}
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                chunks = [data for _, data in sse_events(response) if data]
            content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
            final = chunks[-1]
            assert final["choices"][0]["finish_reason"] == "stop" and final["model"] == "research:wiki"
            steps = final["sieve"]["research"]["steps"]
            assert final["sieve"]["research"]["stop_reason"] == "answered" and len(steps) == 2
            assert all(step["kept"] for step in steps) and "杭州" in content and "深圳" in content
            missing = client.post("/v1/chat/completions", json={**body, "model": "research:nope", "stream": False})
            assert missing.status_code == 404

        tools = HttpKnowledgeTools(url)
        async with Client(build_mcp_server(tools)) as session:
            called = await session.call_tool("research_knowledge_base", {"question": COMPARISON, "kb": "wiki"})
            assert not called.is_error
            assert_two_cited_sections(called.structured_content)
        await tools.aclose()
