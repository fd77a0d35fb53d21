"""FlagEmbedding provider: bge-style dense models and bge-m3, loaded from a local folder only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tokenizers import Tokenizer

from sieve.errors import ConfigurationError
from sieve.models.embedding import l2_normalise

FlagKind = Literal["auto", "dense", "m3"]

# bge-m3 folders ship these heads next to the encoder; plain bge models do not.
_M3_MARKERS = ("colbert_linear.pt", "sparse_linear.pt")


class FastTokenizerOffsets:
    """Token character spans from a Hugging Face fast tokenizer, without special tokens."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        # A private copy: transformers leaves truncation (max_length 512) switched on in the shared
        # backend after each call, and chunking must see every token of a long document.
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def offsets(self, text: str) -> list[tuple[int, int]]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return [(start, end) for start, end in encoding.offsets]


class FlagEmbedder:
    """Dense embeddings through FlagEmbedding.

    `kind="auto"` picks `BGEM3FlagModel` when the folder carries the bge-m3 heads
    (colbert_linear.pt, sparse_linear.pt) and `FlagModel` (CLS pooling) otherwise. Only the dense
    vectors are used. `query_instruction` is prepended to queries, not passages, as the bge models
    expect (e.g. "为这个句子生成表示以用于检索相关文章：" for bge-*-zh-v1.5; bge-m3 needs none).
    """

    def __init__(
        self,
        model_path: Path,
        batch_size: int = 32,
        query_instruction: str | None = None,
        use_fp16: bool = False,
        kind: FlagKind = "auto",
    ) -> None:
        folder = _check_folder(Path(model_path))
        flag_model, m3_model = _import_flag()
        is_m3 = kind == "m3" or (kind == "auto" and all((folder / m).is_file() for m in _M3_MARKERS))
        model_class = m3_model if is_m3 else flag_model
        self._model: Any = model_class(
            str(folder),
            use_fp16=use_fp16,
            query_instruction_for_retrieval=query_instruction,
            batch_size=batch_size,
        )
        self._is_m3 = is_m3
        backend = getattr(self._model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ConfigurationError(f"SIEVE_EMBEDDER_MODEL_PATH: {folder} has no fast tokenizer (tokenizer.json); "
                                     "chunking needs token offsets")
        self._tokenizer = FastTokenizerOffsets(backend)
        self.name = f"flag:{folder.name}"
        # A probe is the one answer that holds for every pooling and head; it costs one short forward pass.
        self.dim = int(self._encode(self._model.encode_corpus, ["dim"]).shape[1])

    @property
    def tokenizer(self) -> FastTokenizerOffsets:
        return self._tokenizer

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self._model.encode_queries, texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self._model.encode_corpus, texts)

    def _encode(self, encode: Callable[[list[str]], Any], texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = encode(list(texts))
        # bge-m3 returns a dict of dense / sparse / colbert outputs.
        vectors = out["dense_vecs"] if self._is_m3 else out
        return l2_normalise(np.atleast_2d(vectors))


def _check_folder(folder: Path) -> Path:
    folder = folder.expanduser().resolve()
    if not (folder / "config.json").is_file():
        what = "has no config.json" if folder.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"FlagEmbedding model folder not found: {folder} {what} (models are never downloaded; "
            "point SIEVE_EMBEDDER_MODEL_PATH at a local folder)"
        )
    return folder


def _import_flag() -> tuple[type, type]:
    try:
        from FlagEmbedding import BGEM3FlagModel, FlagModel
    except ImportError as exc:
        raise ImportError(
            "the flag embedder needs FlagEmbedding and torch: pip install torch==2.13.0 'sieve-rag[flag]'"
        ) from exc
    return FlagModel, BGEM3FlagModel
