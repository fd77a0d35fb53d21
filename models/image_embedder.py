"""CLIP-style image and text embeddings from a local model folder (`SIEVE_IMAGE_EMBEDDER_MODEL_PATH`).

The `image` recall path embeds the images of a knowledge base (image files, and figures on scanned
pages) at ingest, and the query text at search time, in the same space. The folder is what
`save_pretrained` writes for a transformers CLIP model (weights, config, tokenizer, image processor);
nothing is downloaded. torch and transformers come with the `flag` extra.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from sieve.errors import ConfigurationError


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
