"""Retrieval quality per path and fused on the development sets (BEIR layout).

    .venv/bin/python bench/bench_retrieval.py [--home bench/out/home] [--limit N]

Corpora are ingested once into the given home (re-runs reuse them), then every query of the split
runs through bm25 alone, dense alone and the RRF fusion. Same numbers as `sieve eval retrieval`.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sieve.evals.beir import load_split
from sieve.evals.retrieval import configurations, evaluate_retrieval
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.catalog import get_kb
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = [("scifact", "train"), ("rgb-zh", "dev")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=Path("bench/out/home"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=None, help="only the first N queries of each split")
    args = ap.parse_args()
    with Stack(Settings(home=args.home)) as stack:
        print(f"embedder: {type(stack.embedder).__name__}")
        ingestor = Ingestor(stack)
        for name, split_name in SETS:
            split = load_split(args.data / name, split_name)
            if args.limit:
                split.queries = dict(list(split.queries.items())[: args.limit])
            report = ingestor.ingest_beir(split.corpus, f"eval-{name}", "bench", progress=True)
            print(f"\n{name}/{split_name}: {len(split.queries)} queries; ingest: {report.added} added, "
                  f"{report.unchanged} unchanged, {report.embedded} chunks embedded")
            with stack.sessions() as session:
                flt = SearchFilter("bench", get_kb(session, "bench", f"eval-{name}").id)
            retriever = HybridRetriever(stack)
            runs = configurations(["bm25", "dense"], retriever.load_profile(flt.kb))
            reports = asyncio.run(evaluate_retrieval(retriever, flt, split, runs, progress=True))
            retriever.close()
            keys = ["hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@100"]
            print(f"{'run':<7}" + "".join(f"{k:>11}" for k in keys) + f"{'p50 ms':>9}{'p95 ms':>9}")
            for r in reports:
                print(f"{r.name:<7}" + "".join(f"{r.metrics[k]:>11.4f}" for k in keys)
                      + f"{r.latency_ms['p50']:>9.1f}{r.latency_ms['p95']:>9.1f}")
            best_single = max(r.metrics["ndcg@10"] for r in reports if r.name != "fused")
            fused = next(r.metrics["ndcg@10"] for r in reports if r.name == "fused")
            print(f"fused nDCG@10 {fused:.4f} vs best single path {best_single:.4f}: "
                  f"{'at least as good' if fused >= best_single else 'WORSE'}")


if __name__ == "__main__":
    main()
