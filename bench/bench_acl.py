"""What document access lists cost a query: fused (BM25 + dense) latency with and without a caller's readers.

The synthetic corpus of bench_query_latency.py (10 chunks a document), with 1,000 groups: 30% of the
documents are the whole tenant's, the rest each readable by 1-3 random groups (and sometimes one user).
Callers are users in 1-5 random groups. The same queries run tenant-wide (no access-list condition)
and as those callers (the condition inside tantivy and Qdrant Edge), in the same process; the ratio
of the two p95s is the cost (the target is at most 1.5x). Query embedding is excluded (hash embedder).

`--strategies` then compares Qdrant Edge search strategies on the dense path alone, tenant-wide and
as the users: ACORN (what the index uses), plain filtered HNSW and exact search, each with its
recall@10 against exact search. The hash embedder's vectors are much harder for HNSW than real e5
ones, so read its recall for the differences between strategies, not as the recall users get.

    .venv/bin/python bench/bench_acl.py [--chunks 100000] [--queries 200] [--strategies]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import qdrant_edge as qe

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query_latency import build
from synthetic import HashEmbedder, queries

from sieve.evals.metrics import percentile
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores import qdrant_edge_vectors as edge
from sieve.stores.acl import Principal
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

GROUPS = 1_000
USERS = 5_000


def document_acl(rng: random.Random):
    def acl(_doc: int) -> tuple[str, ...]:
        if rng.random() < 0.3:
            return ("*",)
        entries = {f"group:g{rng.randrange(GROUPS)}" for _ in range(rng.randint(1, 3))}
        if rng.random() < 0.2:
            entries.add(f"user:u{rng.randrange(USERS)}")
        return tuple(sorted(entries))

    return acl


def callers(n: int, rng: random.Random) -> list[Principal]:
    return [Principal("bench", f"u{rng.randrange(USERS)}",
                      frozenset(f"g{rng.randrange(GROUPS)}" for _ in range(rng.randint(1, 5)))) for _ in range(n)]


async def measure(
    retriever: HybridRetriever, flts: list[SearchFilter], qs: list[str], paths: list[str]
) -> tuple[list[float], float]:
    """Latency per query (ms, without query embedding) and the mean number of hits."""
    profile = retriever.load_profile(flts[0].kb).merged(paths=paths, top_k=10)
    for q, flt in zip(qs[:10], flts):  # warm-up
        await retriever.retrieve(q, flt, profile=profile)
    out, hits = [], 0
    for q, flt in zip(qs, flts):
        result = await retriever.retrieve(q, flt, profile=profile)
        out.append(result.timings_ms["total"] - result.timings_ms.get("embed_query", 0.0))
        hits += len(result.hits)
    return out, hits / len(qs)


def dense_strategies(stack: Stack, flts: dict[str, list[SearchFilter]], qs: list[str]) -> None:
    """p50/p95 and recall@10 against exact search of each Qdrant Edge strategy, per run of `flts`."""
    strategies = {
        "acorn (shipped)": edge._SEARCH_PARAMS,
        "filtered hnsw": qe.SearchParams(),
        "exact": qe.SearchParams(exact=True),
    }
    shard = stack.vectors._open()
    vectors = stack.embedder.embed_queries(qs)

    def top10(params: qe.SearchParams, flt: SearchFilter, vector: np.ndarray) -> list[str]:
        request = qe.QueryRequest(limit=10, query=qe.Query.Nearest(vector.tolist()), params=params,
                                  filter=edge._scope(flt.tenant, flt.kb, flt.doc_ids, flt.readers),
                                  with_payload=["chunk_id"])
        return [p.payload["chunk_id"] for p in shard.query(request)]

    print(f"\n{'dense strategy':<30} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10}")
    for name, run in flts.items():
        exact = [top10(strategies["exact"], flt, v) for flt, v in zip(run, vectors, strict=True)]
        for strategy, params in strategies.items():
            latencies, recalls = [], []
            for flt, v, truth in zip(run, vectors, exact, strict=True):
                started = time.perf_counter()
                found = top10(params, flt, v)
                latencies.append((time.perf_counter() - started) * 1000)
                recalls.append(len(set(found) & set(truth)) / max(1, len(truth)))
            print(f"{strategy + ' ' + name:<30} {percentile(latencies, 50):>8.2f} {percentile(latencies, 95):>8.2f} "
                  f"{sum(recalls) / len(recalls):>10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--strategies", action="store_true", help="also compare Qdrant Edge strategies on the dense path")
    args = ap.parse_args()
    rng = random.Random(5)
    qs = queries(args.queries)
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings(home=Path(tmp)), embedder=HashEmbedder()) as stack:
        flt = build(stack, args.chunks, acl=document_acl(rng))
        users = callers(len(qs), rng)
        shares = [stack.vectors.count(dataclasses.replace(flt, readers=u.readers)) / args.chunks for u in users[:50]]
        print(f"{GROUPS} groups, users in 1-5 groups; a user reads {100 * sum(shares) / len(shares):.1f}% "
              f"of the chunks on average")
        retriever = HybridRetriever(stack)
        runs = {
            "tenant-wide": [flt] * len(qs),
            "as users": [dataclasses.replace(flt, readers=u.readers) for u in users],
        }
        print(f"\n{'run':<20} {'p50 ms':>8} {'p95 ms':>8} {'hits':>6}   ({len(qs)} queries, "
              f"{args.chunks} chunks, query embedding excluded)")
        p95 = {}
        # each path alone says where the cost is; the runs alternate so that load drifts hit both alike
        for paths in (["bm25"], ["dense"], ["bm25", "dense"]):
            label = "fused" if len(paths) > 1 else paths[0]
            for name, flts in runs.items():
                lat, hits = asyncio.run(measure(retriever, flts, qs, paths))
                p95[label, name] = percentile(lat, 95)
                print(f"{label + ' ' + name:<20} {percentile(lat, 50):>8.2f} {p95[label, name]:>8.2f} {hits:>6.1f}")
        retriever.close()
        if args.strategies:
            dense_strategies(stack, runs, qs)
    for label in ("bm25", "dense", "fused"):
        print(f"{label}: as users / tenant-wide p95 {p95[label, 'as users'] / p95[label, 'tenant-wide']:.2f}x")
    print(f"(target for fused: <= 1.5x; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
