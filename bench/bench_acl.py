"""What document access lists cost a query: fused (BM25 + dense) latency with and without a caller's readers.

The synthetic corpus of bench_query_latency.py (10 chunks a document), with 1,000 groups: 30% of the
documents are the whole tenant's, the rest each readable by 1-3 random groups (and sometimes one user).
Callers are users in 1-5 random groups. The same queries run tenant-wide (no access-list condition)
and as those callers (the condition inside tantivy and Qdrant Edge), in the same process; the ratio
of the two p95s is the cost (the target is at most 1.5x). Query embedding is excluded (hash embedder).

`--strategies` then compares Qdrant Edge search strategies on the dense path alone (as many
candidates as the dense path asks for), tenant-wide and as the users: ACORN, plain filtered HNSW,
exact search and what the index ships (`QdrantEdgeVectorIndex.search`: ACORN tenant-wide, plain
HNSW with ef raised by the kept share for a caller's access list), each with its recall@10 against
exact search. `--vectors hash` (iid noise) is HNSW's worst case: tenant-wide HNSW finds about a
tenth of the true top 10 there; `--vectors lowrank` puts the same hash vectors in a 32-dimensional
subspace, neighbourhoods HNSW finds as on real embeddings (tenant-wide recall@10 ~0.96).

    .venv/bin/python bench/bench_acl.py [--chunks 100000] [--queries 200] [--strategies]
                                        [--vectors hash|lowrank] [--home DIR]

`--home DIR` keeps the built corpus: a later run with the same DIR, --chunks and --vectors reuses it
(building 100k chunks takes minutes on a busy machine).
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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import qdrant_edge as qe

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query_latency import EMBEDDERS, corpus
from synthetic import queries

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
    retriever: HybridRetriever, runs: dict[str, list[SearchFilter]], qs: list[str], paths: list[str]
) -> dict[str, tuple[list[float], float]]:
    """Per run: latency per query (ms, without query embedding) and the mean number of hits. The runs
    take turns query by query, so that the shared machine's load drifts hit them alike."""
    kb = next(iter(runs.values()))[0].kb
    profile = retriever.load_profile(kb).merged(paths=paths, top_k=10)
    for flts in runs.values():  # warm-up
        for q, flt in zip(qs[:10], flts):
            await retriever.retrieve(q, flt, profile=profile)
    out: dict[str, list[float]] = {name: [] for name in runs}
    hits = dict.fromkeys(runs, 0)
    for i, q in enumerate(qs):
        for name, flts in runs.items():
            result = await retriever.retrieve(q, flts[i], profile=profile)
            out[name].append(result.timings_ms["total"] - result.timings_ms.get("embed_query", 0.0))
            hits[name] += len(result.hits)
    return {name: (out[name], hits[name] / len(qs)) for name in runs}


def dense_strategies(stack: Stack, flts: dict[str, list[SearchFilter]], qs: list[str], limit: int) -> None:
    """p50/p95 and recall@10 against exact search of each Qdrant Edge strategy, per run of `flts`;
    `limit` candidates a query, as the dense path asks for."""
    shard = stack.vectors._open()
    vectors = stack.embedder.embed_queries(qs)

    def engine(params: qe.SearchParams) -> Callable[[SearchFilter, np.ndarray], list[str]]:
        def top(flt: SearchFilter, vector: np.ndarray) -> list[str]:
            request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(vector.tolist()), params=params,
                                      filter=edge._scope(flt.tenant, flt.kb, flt.doc_ids, flt.readers),
                                      with_payload=["chunk_id"])
            return [p.payload["chunk_id"] for p in shard.query(request)]

        return top

    strategies = {
        "acorn": engine(edge._SEARCH_PARAMS),
        "filtered hnsw": engine(qe.SearchParams()),
        "exact": engine(qe.SearchParams(exact=True)),
        "shipped": lambda flt, v: [c.chunk_id for c in stack.vectors.search(v, flt, limit)],
    }
    print(f"\n{'dense strategy':<30} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10}   ({limit} candidates a query)")
    for name, run in flts.items():
        exact = [strategies["exact"](flt, v)[:10] for flt, v in zip(run, vectors, strict=True)]
        for strategy, top in strategies.items():
            latencies, recalls = [], []
            for flt, v, truth in zip(run, vectors, exact, strict=True):
                started = time.perf_counter()
                found = top(flt, v)[:10]
                latencies.append((time.perf_counter() - started) * 1000)
                recalls.append(len(set(found) & set(truth)) / max(1, len(truth)))
            print(f"{strategy + ' ' + name:<30} {percentile(latencies, 50):>8.2f} {percentile(latencies, 95):>8.2f} "
                  f"{sum(recalls) / len(recalls):>10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--strategies", action="store_true", help="also compare Qdrant Edge strategies on the dense path")
    ap.add_argument("--home", type=Path, help="keep the built corpus here and reuse it on later runs")
    ap.add_argument("--vectors", choices=("hash", "lowrank"), default="hash",
                    help="iid hash vectors (HNSW's worst case) or hash vectors in a 32-dimensional subspace")
    args = ap.parse_args()
    qs = queries(args.queries)
    with tempfile.TemporaryDirectory() as tmp, \
            Stack(Settings(home=args.home or Path(tmp)), embedder=EMBEDDERS[args.vectors]()) as stack:
        flt = corpus(stack, args.chunks, acl=document_acl(random.Random(5)))
        users = callers(len(qs), random.Random(6))
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
        for paths in (["bm25"], ["dense"], ["bm25", "dense"]):  # each path alone says where the cost is
            label = "fused" if len(paths) > 1 else paths[0]
            for name, (lat, hits) in asyncio.run(measure(retriever, runs, qs, paths)).items():
                p95[label, name] = percentile(lat, 95)
                print(f"{label + ' ' + name:<20} {percentile(lat, 50):>8.2f} {p95[label, name]:>8.2f} {hits:>6.1f}")
        candidates = retriever.load_profile(flt.kb).path_top_k
        retriever.close()
        if args.strategies:
            dense_strategies(stack, runs, qs, candidates)
    for label in ("bm25", "dense", "fused"):
        print(f"{label}: as users / tenant-wide p95 {p95[label, 'as users'] / p95[label, 'tenant-wide']:.2f}x")
    print(f"(target for fused: <= 1.5x; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
