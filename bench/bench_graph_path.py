"""Graph path: latency at 50k relations (synthetic), and nDCG@10 of fused retrieval with and without it.

    .venv/bin/python bench/bench_graph_path.py latency [--relations 50000] [--queries 300]
    .venv/bin/python bench/bench_graph_path.py quality [--limit 100] [--docs 1500]

latency: a synthetic graph (one relation per chunk pair of entities, heads drawn from a power law so
there are hubs) in a fresh home with the real embedder for entity names; times the recursive-CTE walk
alone and the whole path (entities found in the query, name vectors, walk) for random and hub entities.

quality: the dev sets (scifact train, rgb-zh dev). Extracting and embedding the full corpora does not
fit two cores in a bench run, so each corpus is cut to the documents relevant to the first `--limit`
queries plus random others up to `--docs` (seeded): an easier corpus than the full one, the same for
every run. Budgets are generous so that the numbers are about quality, not this machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from sieve.evals.beir import load_split
from sieve.evals.metrics import percentile
from sieve.evals.retrieval import evaluate_retrieval
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.graph_path import graph_search
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.graph import ChunkTriples, Triple, entity_id
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = [("scifact", "train"), ("rgb-zh", "dev")]
GENEROUS = {"embed_budget_ms": 60_000, "path_budget_ms": 60_000, "total_budget_ms": 120_000}


def pseudo_names(n: int, rng: np.random.Generator) -> list[str]:
    """Distinct made-up two-word names ("Talvero Minsk"): their vectors are as far apart as real names'."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    names: set[str] = set()
    while len(names) < n:
        words = ("".join(rng.choice(syllables, rng.integers(2, 4))).capitalize() for _ in range(2))
        names.add(" ".join(words))
    return sorted(names)


def latency(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(7)
    n_entities = args.relations // 5
    names = pseudo_names(n_entities, rng)
    # power-law heads: a few entities take part in thousands of relations
    heads = np.minimum(rng.zipf(1.6, args.relations) - 1, n_entities - 1)
    tails = rng.integers(0, n_entities, args.relations)
    weights = rng.uniform(0.2, 1.0, args.relations)
    with tempfile.TemporaryDirectory() as home, Stack(Settings(home=Path(home))) as stack:
        flt = SearchFilter("bench", "kb")
        t0 = time.perf_counter()
        batch = []
        for i, (h, t, w) in enumerate(zip(heads, tails, weights)):
            if h != t:
                batch.append(ChunkTriples(f"c{i:06d}", f"d{i // 4:06d}",
                                          [Triple(names[h], "other", "links", names[t], "other", float(w))]))
            if len(batch) == 2000:
                stack.graph.add("bench", "kb", batch)
                batch = []
        stack.graph.add("bench", "kb", batch)
        entities, relations = stack.graph.count(flt)
        degree = np.bincount(np.concatenate([heads, tails]), minlength=n_entities)
        print(f"{relations} relations, {entities} entities (max degree {degree.max()}, median {int(np.median(degree))}); "
              f"built in {time.perf_counter() - t0:.0f} s")
        picks = {"random": rng.choice(np.flatnonzero(degree), args.queries),
                 "hub (top 10 degree)": np.argsort(-degree)[:10].repeat(max(1, args.queries // 10))}
        fanout = stack.settings.graph_fanout
        graph_search(stack.graph, f"Which genes does {names[0]} regulate?", flt, 2, fanout, 100)
        print(f"{'entities':<22}{'what':<28}{'p50 ms':>9}{'p95 ms':>9}{'chunks':>8}")
        for label, ids in picks.items():
            for what, run in (
                ("walk (CTE, 2 hops)", lambda e: stack.graph.expand({entity_id("bench", "kb", names[e]): 1.0}, flt, 2,
                                                                   fanout, 100)),
                ("graph path (query->chunks)", lambda e: graph_search(stack.graph, f"Which genes does {names[e]} regulate?",
                                                                     flt, 2, fanout, 100)),
            ):
                times, found = [], []
                for e in ids:
                    t0 = time.perf_counter()
                    found.append(len(run(int(e))))
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"{label:<22}{what:<28}{percentile(times, 50):>9.2f}{percentile(times, 95):>9.2f}"
                      f"{np.mean(found):>8.1f}")


def subset_corpus(data: Path, relevant: set[str], size: int, out: Path) -> int:
    rng = random.Random(13)
    lines = (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    keep = [line for line in lines if json.loads(line)["_id"] in relevant]
    others = [line for line in lines if line.strip() and json.loads(line)["_id"] not in relevant]
    keep += rng.sample(others, max(0, min(len(others), size - len(keep))))
    out.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return len(keep)


def quality(args: argparse.Namespace) -> None:
    args.home.mkdir(parents=True, exist_ok=True)
    with Stack(Settings(home=args.home)) as stack:
        print(f"embedder: {type(stack.embedder).__name__}")
        for name, split_name in (s for s in SETS if s[0] in args.sets):
            split = load_split(args.data / name, split_name)
            split.queries = dict(list(split.queries.items())[: args.limit])
            split.qrels = {q: split.qrels[q] for q in split.queries}
            relevant = {doc for rel in split.qrels.values() for doc in rel}
            corpus = args.home / f"{name}-subset.jsonl"
            size = subset_corpus(args.data / name, relevant, args.docs, corpus)
            split.corpus = corpus
            kb = f"graph-{name}-{args.limit}-{args.docs}"
            with stack.sessions.begin() as session:
                row = get_or_create_kb(session, "bench", kb)
                row.profile = {**(row.profile or {}), "graph_extraction": True}
                flt = SearchFilter("bench", row.id)
            t0 = time.perf_counter()
            report = Ingestor(stack).ingest_beir(corpus, kb, "bench", progress=True)
            entities, relations = stack.graph.count(flt)
            print(f"\n{name}/{split_name}: {len(split.queries)} queries over {size} documents "
                  f"({len(relevant)} relevant); ingest {report.added} added in {time.perf_counter() - t0:.0f} s; "
                  f"graph: {entities} entities, {relations} relations")
            retriever = HybridRetriever(stack)
            base = retriever.load_profile(flt.kb).merged(**GENEROUS)
            runs = {
                "graph": base.merged(paths=["graph"]),
                "bm25+dense": base.merged(paths=["bm25", "dense"]),
                "bm25+dense+graph": base.merged(paths=["bm25", "dense", "graph"]),
                "...+graph w=0.3": base.merged(paths=["bm25", "dense", "graph"],
                                               weights={"bm25": 1.0, "dense": 1.0, "graph": 0.3}),
            }
            reports = asyncio.run(evaluate_retrieval(retriever, flt, split, runs, progress=True))
            retriever.close()
            keys = ["hit@1", "hit@10", "mrr@10", "ndcg@10", "recall@100"]
            print(f"{'run':<18}" + "".join(f"{k:>11}" for k in keys) + f"{'p50 ms':>9}{'p95 ms':>9}")
            for r in reports:
                print(f"{r.name:<18}" + "".join(f"{r.metrics[k]:>11.4f}" for k in keys)
                      + f"{r.latency_ms['p50']:>9.1f}{r.latency_ms['p95']:>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--relations", type=int, default=50_000)
    lat.add_argument("--queries", type=int, default=300)
    qual = sub.add_parser("quality")
    qual.add_argument("--home", type=Path, default=Path("bench/out/graph-home"))
    qual.add_argument("--data", type=Path, default=DATA)
    qual.add_argument("--limit", type=int, default=100, help="queries of each split")
    qual.add_argument("--docs", type=int, default=1500, help="corpus documents kept (relevant ones first)")
    qual.add_argument("--sets", nargs="+", default=[name for name, _ in SETS], help="which dev sets")
    args = ap.parse_args()
    latency(args) if args.what == "latency" else quality(args)


if __name__ == "__main__":
    main()
