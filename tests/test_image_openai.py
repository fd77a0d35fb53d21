"""The `image` path over an OpenAI-compatible multimodal `/v1/embeddings` server (SIEVE_IMAGE_EMBEDDER=openai):
a loopback server speaking both request shapes (`input` items, vLLM's `messages`) embeds pictures by their
colours and texts by their colour words, so a text query finds the picture it describes; a server that is
down or answers another width degrades the path with `image_error` while the other paths answer."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from openai_wire import serve
from PIL import Image
from retrieval_support import picture, search
from server_support import add_key, running_server, server_settings, upload

from sieve.ingest.pipeline import Ingestor
from sieve.settings import Settings, get_settings
from sieve.stores.catalog import get_kb
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

pytestmark = pytest.mark.integration
COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 160, 0)}


class MultimodalWire:
    """`/v1/embeddings` for texts and data-URL images; `width` is the size of the vectors it answers."""

    def __init__(self) -> None:
        self.width = len(COLOURS) + 1
        self.failing = False  # answers 503, as a server whose model is not loaded
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/v1/embeddings")(self.embeddings)

    async def embeddings(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        if self.failing:
            return JSONResponse({"error": {"message": "model not loaded"}}, status_code=503)
        if "messages" in body:  # vLLM: one conversation, one vector
            (part,) = body["messages"][0]["content"]
            items = [{"image": part["image_url"]["url"]} if part["type"] == "image_url" else {"text": part["text"]}]
        else:
            items = body["input"]
        data = [{"object": "embedding", "index": i, "embedding": self._vector(item)} for i, item in enumerate(items)]
        return JSONResponse({"object": "list", "model": body["model"], "data": data})

    def _vector(self, item: dict[str, str]) -> list[float]:
        if "text" in item:
            words = item["text"].lower().split()
            scores = [float(words.count(colour)) for colour in COLOURS]
        else:
            header, payload = item["image"].split(",", 1)
            assert header == "data:image/png;base64"
            pixels = list(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB").get_flattened_data())
            scores = [sum(_near(pixel, rgb) for pixel in pixels) / len(pixels) for rgb in COLOURS.values()]
        return [*scores, 0.05, *[0.0] * (self.width - len(COLOURS) - 1)][: self.width]


def _near(pixel: tuple[int, int, int], rgb: tuple[int, int, int]) -> bool:
    return sum(abs(a - b) for a, b in zip(pixel, rgb)) < 120


@pytest.fixture
def wire():
    return MultimodalWire()


@pytest.fixture
def configure(tmp_path, monkeypatch):
    """Sets the image embedder's variables (the loaders read the process's settings too); yields a Stack maker."""
    stacks: list[Stack] = []

    def open_stack(embedder, **env: str) -> Stack:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        stacks.append(Stack(Settings(home=tmp_path / "home"), embedder=embedder))
        return stacks[-1]

    yield open_stack
    for stack in stacks:
        stack.close()
    get_settings.cache_clear()


def pictures(folder) -> None:
    folder.mkdir()
    for name, colour in (("red-circle.png", "red"), ("blue-square.png", "blue")):
        picture("circle" if "circle" in name else "square", colour).save(folder / name)



def ingest(stack: Stack, tmp_path) -> tuple[Ingestor, SearchFilter]:
    pictures(tmp_path / "pictures")
    ingestor = Ingestor(stack)
    report = ingestor.ingest_paths([tmp_path / "pictures"], "pics", "t1")
    assert report.added == 2 and not report.failed
    with stack.sessions() as session:
        return ingestor, SearchFilter("t1", get_kb(session, "t1", "pics").id)


@pytest.mark.parametrize("shape", ["input", "messages"])
def test_pictures_are_embedded_by_the_server_and_found_by_the_text_that_describes_them(
        shape, wire, configure, embedder, tmp_path):
    with serve(wire.app) as url:
        stack = configure(embedder, SIEVE_IMAGE_EMBEDDER="openai", SIEVE_IMAGE_EMBEDDER_BASE_URL=f"{url}/v1",
                          SIEVE_IMAGE_EMBEDDER_WIRE=shape, SIEVE_IMAGE_EMBEDDER_MODEL="tiny-clip")
        _, flt = ingest(stack, tmp_path)
        assert stack.image_vectors.count(flt) == 2
        for colour in ("red", "blue"):
            result = search(stack, f"a photo of a {colour} shape", flt, ["image"])
            assert result.degraded == []
            assert result.hits[0].filename.startswith(colour) and set(result.hits[0].ranks) == {"image"}

    images = [item for body in wire.requests for item in
              (body.get("input") or [part for m in body.get("messages", []) for part in m["content"]])
              if "image" in item or item.get("type") == "image_url"]
    assert len(images) == 2 and all(body["model"] == "tiny-clip" for body in wire.requests)
    urls = [item["image"] if shape == "input" else item["image_url"]["url"] for item in images]
    assert all(url.startswith("data:image/png;base64,") for url in urls)


def test_a_server_that_is_down_flags_the_path_and_documents_can_still_be_deleted(wire, configure, embedder, tmp_path):
    with serve(wire.app) as url:
        stack = configure(embedder, SIEVE_IMAGE_EMBEDDER="openai", SIEVE_IMAGE_EMBEDDER_BASE_URL=f"{url}/v1")
        _, flt = ingest(stack, tmp_path)
    # the server is gone: the image path says so, BM25 still answers (a picture without text is indexed by its name)
    result = search(stack, "blue square", flt, ["bm25", "image"])
    assert result.degraded == ["image_error"]
    assert [h.filename for h in result.hits] == ["blue-square.png"] and set(result.hits[0].ranks) == {"bm25"}

    # after a restart too: the stored vectors' width is known without asking the server
    stack.close()
    stack = configure(embedder)
    assert search(stack, "blue square", flt, ["bm25", "image"]).degraded == ["image_error"]
    assert Ingestor(stack).delete_documents("t1", flt.kb, [result.hits[0].doc_id]) == 1
    assert stack.image_vectors.count(flt) == 1


def test_a_server_answering_another_width_flags_the_path_now_and_after_a_restart(wire, configure, embedder, tmp_path):
    with serve(wire.app) as url:
        stack = configure(embedder, SIEVE_IMAGE_EMBEDDER="openai", SIEVE_IMAGE_EMBEDDER_BASE_URL=f"{url}/v1")
        _, flt = ingest(stack, tmp_path)
        wire.width = 8  # the model behind the same name was swapped for a wider one
        result = search(stack, "blue square", flt, ["bm25", "image"])
        assert result.degraded == ["image_error"]
        assert [h.filename for h in result.hits] == ["blue-square.png"]

        stack.close()
        restarted = configure(embedder)
        assert search(restarted, "blue square", flt, ["bm25", "image"]).degraded == ["image_error"]
        assert restarted.image_vectors.count(flt) == 2  # nothing was written into a new space


def test_an_openai_image_embedder_without_a_url_is_not_configured(configure, embedder, sample_kb):
    stack = configure(embedder, SIEVE_IMAGE_EMBEDDER="openai")
    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "demo").id)
    result = search(stack, "Apple Inc. headquarters", flt, ["bm25", "image"])
    assert result.degraded == ["image_not_configured"] and result.hits


def test_the_search_api_answers_with_the_flag_when_the_image_server_fails(wire, monkeypatch, tmp_path):
    pictures(tmp_path / "pictures")
    with serve(wire.app) as url:
        env = {"image_embedder": "openai", "image_embedder_base_url": f"{url}/v1"}
        for name, value in env.items():  # the loaders (in the ingest worker too) read the environment
            monkeypatch.setenv(f"SIEVE_{name.upper()}", value)
        get_settings.cache_clear()
        settings = server_settings(tmp_path / "home", **env)
        key = add_key(settings, "acme")
        with running_server(settings) as base, \
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            client.post("/v1/knowledge-bases", json={"name": "pics"}).raise_for_status()
            for path in sorted((tmp_path / "pictures").iterdir()):
                assert upload(client, "pics", path)["status"] == "succeeded"

            def searched(query: str) -> dict[str, Any]:
                response = client.post("/v1/knowledge-bases/pics/search",
                                       json={"query": query, "paths": ["bm25", "image"]})
                assert response.status_code == 200, response.text
                return response.json()

            found = searched("a red shape")
            assert found["degraded"] == [] and found["hits"][0]["filename"] == "red-circle.png"
            wire.width = 8
            assert searched("blue square")["degraded"] == ["image_error"]
            wire.failing = True
            down = searched("blue square")
            assert down["degraded"] == ["image_error"] and down["hits"][0]["filename"] == "blue-square.png"
    get_settings.cache_clear()
