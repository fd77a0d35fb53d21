"""The SearxNG adapter against a loopback server speaking its JSON format."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from openai_wire import serve

from sieve.tools.web_search import SearxNG


def searx_app(status: int = 200) -> FastAPI:
    app = FastAPI()

    @app.get("/search")
    async def search(request: Request):
        if status != 200:
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": "rate limited"}, status_code=status)
        assert request.query_params["format"] == "json"
        q = request.query_params["q"]
        return {"query": q, "results": [
            {"title": f"About {q}", "url": "https://a.example/1", "content": "First snippet."},
            {"title": "No url", "content": "dropped"},
            {"title": "Second", "url": "https://b.example/2", "content": "Second snippet."},
        ]}

    return app


async def test_searxng_results_become_titled_snippets_with_urls():
    with serve(searx_app()) as url:
        results = await SearxNG(url).search("paris weather", k=5)
    assert [(r.title, r.url, r.snippet) for r in results] == [
        ("About paris weather", "https://a.example/1", "First snippet."),
        ("Second", "https://b.example/2", "Second snippet."),
    ]


async def test_searxng_errors_surface_to_the_graph():
    with serve(searx_app(status=429)) as url, pytest.raises(httpx.HTTPStatusError):
        await SearxNG(url).search("anything", k=3)
