"""The two embedded engines alone: tantivy BM25 and Qdrant Edge dense search on a synthetic corpus.

Indexes 100k mixed zh/en chunks (4 tenants x 2 knowledge bases, so a tenant/kb filter keeps 1/8 of
them) into tantivy and, with clustered random 384-d unit vectors, into Qdrant Edge; then times 200
filtered queries on each. Qdrant Edge is timed twice: on the plain segments `add` leaves, and after
`optimize()` builds HNSW. Exact numpy search over the same vectors and filter is the baseline.

    .venv/bin/python bench/bench_stores.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import chunk_texts, queries

from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex
from sieve.stores.tantivy_text import TantivyTextIndex
from sieve.stores.types import IndexedChunk, SearchFilter

DIM = 384
BATCH = 5000  # what the ingest pipeline hands the stores at once
K = 10
FILTER = SearchFilter("t1", "kb1")


def corpus(n: int) -> list[IndexedChunk]:
    texts = chunk_texts(n)
    # ten chunks a document; documents spread over tenants t0-t3 and kbs kb0-kb1
    return [
        IndexedChunk(f"c{i}", f"d{i // 10}", f"t{(i // 10) % 4}", f"kb{(i // 40) % 2}", text)
        for i, text in enumerate(texts)
    ]


def clustered_unit_vectors(n: int, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random vectors around random centres: like real embeddings, unlike iid noise, they have structure."""
    v = centres[rng.integers(len(centres), size=n)] + 0.8 * rng.standard_normal((n, centres.shape[1]))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def percentiles_ms(samples: list[float]) -> str:
    p50, p95 = np.percentile(np.array(samples) * 1000, [50, 95])
    return f"p50 {p50:7.3f} ms   p95 {p95:7.3f} ms"


def timed(fn, inputs) -> tuple[list[float], list]:
    latencies, results = [], []
    for item in inputs:
        t0 = time.perf_counter()
        results.append(fn(item))
        latencies.append(time.perf_counter() - t0)
    return latencies, results


def bench_text(root: Path, chunks: list[IndexedChunk], qs: list[str]) -> None:
    index = TantivyTextIndex(root / "text")
    try:
        t0 = time.perf_counter()
        for start in range(0, len(chunks), BATCH):
            index.add(chunks[start : start + BATCH])
        print(
            f"tantivy        index {len(chunks)} chunks: {time.perf_counter() - t0:6.1f} s"
            f"   (filter holds {index.count(FILTER)})"
        )
        latencies, results = timed(lambda q: index.search(q, FILTER, K), qs)
        hit_rate = np.mean([bool(r) for r in results])
        print(f"tantivy        query  {percentiles_ms(latencies)}   (queries with hits: {hit_rate:.0%})")
    finally:
        index.close()


def bench_vectors(root: Path, chunks: list[IndexedChunk], n_queries: int) -> None:
    rng = np.random.default_rng(42)
    centres = rng.standard_normal((200, DIM))
    vectors = clustered_unit_vectors(len(chunks), centres, rng)
    query_vectors = clustered_unit_vectors(n_queries, centres, rng)
    allowed = np.array([c.tenant == FILTER.tenant and c.kb == FILTER.kb for c in chunks])

    def exact(q: np.ndarray) -> list[str]:
        scores = np.where(allowed, vectors @ q, -np.inf)
        top = np.argpartition(-scores, K)[:K]
        return [chunks[i].chunk_id for i in top[np.argsort(-scores[top])]]

    np_latencies, truth = timed(exact, query_vectors)

    index = QdrantEdgeVectorIndex(root / "vectors", DIM)
    try:
        t0 = time.perf_counter()
        for start in range(0, len(chunks), BATCH):
            index.add(chunks[start : start + BATCH], vectors[start : start + BATCH])
        print(
            f"qdrant edge    add {len(chunks)} vectors:  {time.perf_counter() - t0:6.1f} s"
            f"   (filter holds {index.count(FILTER)})"
        )

        def report(label: str) -> float:
            latencies, results = timed(lambda q: index.search(q, FILTER, K), query_vectors)
            recall = np.mean([len(set(t) & {h.chunk_id for h in r}) / K for t, r in zip(truth, results, strict=True)])
            print(f"qdrant edge    query  {percentiles_ms(latencies)}   recall@{K} {recall:.3f}  ({label})")
            return float(np.percentile(latencies, 50))

        plain_p50 = report("plain segments, as add leaves them")
        t0 = time.perf_counter()
        index.optimize()
        print(f"qdrant edge    optimize (HNSW build):  {time.perf_counter() - t0:6.1f} s")
        hnsw_p50 = report("after optimize: HNSW + ACORN")
    finally:
        index.close()

    np_p50 = float(np.percentile(np_latencies, 50))
    print(f"numpy exact    query  {percentiles_ms(np_latencies)}   (full scan + mask, the baseline)")
    print(f"p50 vs numpy:  qdrant plain {plain_p50 / np_p50:.2f}x   qdrant hnsw {hnsw_p50 / np_p50:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    chunks = corpus(args.chunks)
    with tempfile.TemporaryDirectory(prefix="sieve-bench-stores-") as tmp:
        bench_text(Path(tmp), chunks, queries(args.queries))
        bench_vectors(Path(tmp), chunks, args.queries)


if __name__ == "__main__":
    main()
