"""CLIP-style image and text embeddings: a local model folder or an OpenAI-compatible server.

The `image` recall path embeds the images of a knowledge base (image files, and figures on scanned
pages) at ingest, and the query text at search time, in the same space. `SIEVE_IMAGE_EMBEDDER=local`
reads `SIEVE_IMAGE_EMBEDDER_MODEL_PATH`: what `save_pretrained` writes for a transformers CLIP model
(weights, config, tokenizer, image processor); nothing is downloaded, and torch and transformers come
with the `flag` extra. `SIEVE_IMAGE_EMBEDDER=openai` asks a multimodal `/v1/embeddings` server at
`SIEVE_IMAGE_EMBEDDER_BASE_URL` (`OpenAIImageEmbedder`). open_clip folders are not read: the only
torchvision the package index has for the local CPU torch is a CUDA build that cannot import beside it.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
import numpy as np
from more_itertools import chunked

from sieve.errors import ConfigurationError
from sieve.models.embedding import l2_normalise
from sieve.models.openai_embedder import EmbeddingServerError, embeddings_of, server_message

if TYPE_CHECKING:
    from sieve.settings import Settings

Wire = Literal["input", "messages"]

# Statuses worth another try: the server is overloaded or restarting, not refusing this request.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ImageEmbedder(Protocol):
    """Images and query texts in one space, L2-normalised; `name` and `dim` name the vector space."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed_images(self, images: list[Any]) -> np.ndarray: ...

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


def load_image_embedder(settings: Settings) -> ImageEmbedder | None:
    """The configured image embedder; None when the `image` path has no model."""
    if not settings.image_embedder_configured:
        return None
    if settings.image_embedder == "openai":
        assert settings.image_embedder_base_url is not None
        return OpenAIImageEmbedder(settings.image_embedder_base_url, settings.image_embedder_model,
                                   api_key=settings.image_embedder_api_key, wire=settings.image_embedder_wire,
                                   batch_size=settings.embedder_batch_size)
    assert settings.image_embedder_model_path is not None
    return ClipImageEmbedder(settings.image_embedder_model_path, settings.embedder_threads)


class ImageEmbedderError(ConfigurationError, RuntimeError):
    """The configured folder does not hold a loadable CLIP-style model; the message says what is wrong."""


class ClipImageEmbedder:
    def __init__(self, path: Path, threads: int = 0):
        try:
            import torch
            from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
        except ImportError as exc:
            raise ImageEmbedderError(
                f"the image embedder needs torch and transformers ({exc.name} is missing): "
                "pip install 'sieve-rag[flag]'") from None
        if not path.is_dir():
            raise ImageEmbedderError(f"SIEVE_IMAGE_EMBEDDER_MODEL_PATH is not a folder: {path}")
        try:
            self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ImageEmbedderError(f"cannot load a CLIP-style model from {path}: {exc}") from None
        if not hasattr(self._model, "get_image_features"):
            raise ImageEmbedderError(f"{path} holds a {type(self._model).__name__}, not a CLIP-style model")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._lock = threading.Lock()
        self.name = path.name
        self.dim = int(self._model.config.projection_dim)
        self.max_text_tokens = int(getattr(self._model.config.text_config, "max_position_embeddings", 77))

    def embed_images(self, images: list[Any]) -> np.ndarray:
        """L2-normalised vectors of PIL images."""
        inputs = self._processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        with self._lock, self._torch.inference_mode():
            return _normalised(self._model.get_image_features(pixel_values=inputs["pixel_values"]))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised vectors of texts (queries), in the images' space."""
        inputs = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_text_tokens,
                                 return_tensors="pt")
        with self._lock, self._torch.inference_mode():
            return _normalised(self._model.get_text_features(input_ids=inputs["input_ids"],
                                                             attention_mask=inputs["attention_mask"]))


def _normalised(output: Any) -> np.ndarray:
    # transformers 5 returns the projected vectors as the output's pooler_output, 4 returns the tensor
    tensor = getattr(output, "pooler_output", output)
    vectors = tensor.float().numpy()
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class OpenAIImageEmbedder:
    """CLIP-style vectors from an OpenAI-compatible multimodal `/v1/embeddings` server.

    Images travel as PNG data URLs, in one of two request shapes (`wire`); both are answered with
    OpenAI's `data[].embedding`:
    - `input`: `"input": [{"image": "data:image/png;base64,..."}, {"text": "..."}]`, a batch a request:
      the shape of Jina's API (jina-clip-v2) and of Azure AI inference's image embeddings.
    - `messages`: vLLM's chat-style embeddings (`vllm serve openai/clip-vit-base-patch32 --runner pooling`),
      whose `input` takes strings only: one item a request, `"messages": [{"role": "user", "content":
      [{"type": "image_url", "image_url": {"url": "data:..."}}]}]`, a text as a `{"type": "text"}` part.

    `dim` is learnt from the first answer (or given by the folder of vectors already stored); an
    answer of another width raises, so a swapped model never mixes with the stored vectors.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str = "EMPTY", wire: Wire = "input",
                 batch_size: int = 32, timeout: float = 30.0, max_retries: int = 2, backoff: float = 0.5) -> None:
        self.name = f"openai:{model}"
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model, self._wire, self._batch_size = model, wire, batch_size
        self._max_retries, self._backoff = max_retries, backoff
        self._dim: int | None = None
        self._client = httpx.Client(headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_texts(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def expect(self, dim: int) -> None:
        """The width of the vectors already stored: answers of another width are refused from now on."""
        self._dim = dim

    def embed_images(self, images: list[Any]) -> np.ndarray:
        """L2-normalised vectors of PIL images; at ingest, so a busy server is waited for (retried)."""
        return self._embed([("image", _data_url(image)) for image in images], self._max_retries)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised vectors of query texts; one try, since a query's budget is milliseconds."""
        return self._embed([("text", text) for text in texts], 0)

    def close(self) -> None:
        self._client.close()

    def _embed(self, items: list[tuple[str, str]], retries: int) -> np.ndarray:
        groups = chunked(items, self._batch_size) if self._wire == "input" else ([item] for item in items)
        parts = [self._parse(self._post(self._body(group), retries), len(group)) for group in groups]
        return l2_normalise(np.concatenate(parts)) if parts else np.zeros((0, self.dim), dtype=np.float32)

    def _body(self, group: Sequence[tuple[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._model, "encoding_format": "float"}
        if self._wire == "input":
            body["input"] = [{kind: value} for kind, value in group]
        else:
            ((kind, value),) = group
            part = ({"type": "image_url", "image_url": {"url": value}} if kind == "image"
                    else {"type": "text", "text": value})
            body["messages"] = [{"role": "user", "content": [part]}]
        return body

    def _post(self, body: dict[str, Any], retries: int) -> httpx.Response:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(min(self._backoff * 2 ** (attempt - 1), 10.0))
            try:
                response = self._client.post(self._url, json=body)
            except httpx.TransportError as exc:
                failure, status = f"is unreachable ({type(exc).__name__})", None
                continue
            if response.status_code not in _RETRY_STATUSES:
                return response
            failure, status = f"answered {response.status_code}: {server_message(response)}", response.status_code
        raise EmbeddingServerError(f"image embeddings server {self._url} {failure}", status)

    def _parse(self, response: httpx.Response, expected: int) -> np.ndarray:
        vectors = embeddings_of(response, expected, f"image embeddings server {self._url}")
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise EmbeddingServerError(f"image embeddings server {self._url} returned {vectors.shape[1]}-dimensional "
                                       f"vectors; the image index holds {self._dim}-dimensional ones")
        return vectors


def _data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
