"""FlagEmbedder against a tiny random BERT built here (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sieve.models.embedding import Embedder
from sieve.models.flag_embedder import FlagEmbedder

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("FlagEmbedding")

WORDS = "the a of to and in is it model vector search text retrieval hello world 你 好 世 界".split()
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("bge-tiny")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ing", *LETTERS]
    vocab += [f"##{c}" for c in LETTERS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # from_pretrained reads vocab.txt on every transformers version; save_pretrained adds tokenizer.json.
    BertTokenizerFast.from_pretrained(folder).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.5,  # a wider random init so different texts land visibly apart
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> FlagEmbedder:
    return FlagEmbedder(model_dir, batch_size=2)


def test_vectors_are_normalised_with_the_model_width(embedder: FlagEmbedder, model_dir: Path) -> None:
    texts = ["hello world", "vector search", "the model", "你好世界", "text retrieval is it"]
    vectors = embedder.embed_passages(texts)
    assert isinstance(embedder, Embedder)
    assert embedder.name == f"flag:{model_dir.name}"
    assert embedder.dim == 32
    assert vectors.shape == (5, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert embedder.embed_queries(["hello world"]).shape == (1, 32)
    assert embedder.embed_queries([]).shape == (0, 32)


def test_same_text_same_vector_different_texts_differ(embedder: FlagEmbedder) -> None:
    batch = embedder.embed_passages(["hello world", "vector search", "hello world"])
    alone = embedder.embed_passages(["hello world"])[0]
    # batching (and length-sorting inside FlagEmbedding) must not reorder or change vectors
    np.testing.assert_allclose(batch[0], alone, atol=1e-5)
    np.testing.assert_allclose(batch[2], alone, atol=1e-5)
    assert float(batch[0] @ batch[1]) < 0.999


def test_query_instruction_changes_queries_only(model_dir: Path, embedder: FlagEmbedder) -> None:
    instructed = FlagEmbedder(model_dir, query_instruction="search: ")
    text = ["hello world"]
    np.testing.assert_allclose(instructed.embed_passages(text), embedder.embed_passages(text), atol=1e-5)
    assert float(instructed.embed_queries(text)[0] @ embedder.embed_queries(text)[0]) < 0.999


def test_offsets_map_back_to_the_text(embedder: FlagEmbedder) -> None:
    long_text = "Hello worlds, 你好 vector searching! " * 200  # far past the model's 128 positions
    spans = embedder.tokenizer.offsets(long_text)
    assert [long_text[s:e].lower() for s, e in spans[:7]] == ["hello", "world", "s", ",", "你", "好", "vector"]
    assert len(spans) > 1000  # not truncated: chunking needs every token
    assert all(0 <= s < e <= len(long_text) for s, e in spans)
    assert spans == sorted(spans)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded.*SIEVE_EMBEDDER_MODEL_PATH"):
        FlagEmbedder(tmp_path / "bge-small-zh-v1.5")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        FlagEmbedder(tmp_path)
