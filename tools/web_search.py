"""Web search for the graph's web route: a small protocol and a SearxNG JSON adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    from sieve.settings import Settings


@dataclass(frozen=True)
class WebResult:
    title: str
    url: str
    snippet: str


class WebSearch(Protocol):
    async def search(self, query: str, k: int) -> list[WebResult]: ...


class SearxNG:
    """SearxNG's `/search?format=json` (the instance must enable the json format in settings.yml)."""

    def __init__(self, base_url: str, timeout_s: float = 8.0, language: str = "auto"):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.language = language

    async def search(self, query: str, k: int) -> list[WebResult]:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            response = await client.get(
                f"{self.base_url}/search",
                params={"q": query, "format": "json", "language": self.language},
            )
            response.raise_for_status()
        results = response.json().get("results", [])
        return [
            WebResult(title=r.get("title", ""), url=r["url"], snippet=r.get("content", ""))
            for r in results[:k]
            if r.get("url") and (r.get("content") or r.get("title"))
        ]


def build_web_search(settings: Settings) -> WebSearch | None:
    return SearxNG(settings.searxng_url) if settings.searxng_url else None
