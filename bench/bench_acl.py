"""What document access lists cost a query: fused (BM25 + dense) latency with and without a caller's readers.

The synthetic corpus of bench_query_latency.py (10 chunks a document), with 1,000 groups: 30% of the
documents are the whole tenant's, the rest each readable by 1-3 random groups (and sometimes one user).
Callers are users in 1-5 random groups. The same queries run tenant-wide (no access-list condition)
and as those callers (the condition inside tantivy and Qdrant Edge), in the same process; the ratio
of the two p95s is the cost (the target is at most 1.5x). Query embedding is excluded (hash embedder).

    .venv/bin/python bench/bench_acl.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query_latency import build
from synthetic import HashEmbedder, queries

from sieve.evals.metrics import percentile
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
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
    for label in ("bm25", "dense", "fused"):
        print(f"{label}: as users / tenant-wide p95 {p95[label, 'as users'] / p95[label, 'tenant-wide']:.2f}x")
    print("(target for fused: <= 1.5x)")


if __name__ == "__main__":
    main()
