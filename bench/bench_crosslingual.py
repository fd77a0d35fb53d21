"""Cross-lingual hit rate at 3, both directions: zh->en (a Chinese query's English target in the top 3)
and en->zh, on the mixed zh/en KB of tests/test_crosslingual.py and on samples/kb.

    .venv/bin/python bench/bench_crosslingual.py [--home DIR] [--k 3]

The queries and targets are in sieve/evals/data/crosslingual/queries.json. Each row is the shipped
retrieval (fused BM25 + dense with the profile default), then each path alone for comparison. The
KBs are ingested into a fresh temporary home unless --home names one (re-runs reuse it).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from sieve.evals.crosslingual import DIRECTIONS, FOLDERS, hit_at, queries
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.settings import Settings
from sieve.stores.catalog import get_kb
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

RUNS = {"fused": None, "bm25 alone": ["bm25"], "dense alone": ["dense"]}


def run(home: Path, k: int) -> None:
    asked = queries()
    print(f"{'kb':<8}{'run':<13}" + "".join(f"{d + f' hit@{k}':>16}{'hit@1':>7}" for d in DIRECTIONS))
    misses = []
    with Stack(Settings(home=home)) as stack:
        for kb, by_direction in asked.items():
            Ingestor(stack).ingest_paths([FOLDERS[kb]], f"crosslingual-{kb}", "bench")
            with stack.sessions() as session:
                flt = SearchFilter("bench", get_kb(session, "bench", f"crosslingual-{kb}").id)
            retriever = HybridRetriever(stack)
            try:
                for name, paths in RUNS.items():
                    profile = None if paths is None else RetrievalProfile().merged(paths=paths)
                    cells = []
                    for direction in DIRECTIONS:
                        report = asyncio.run(hit_at(retriever, flt, by_direction[direction], k, profile))
                        cells.append(f"{f'{report.hits}/{report.queries} = {report.hit_rate:.2f}':>16}"
                                     f"{report.first / max(1, report.queries):>7.2f}")
                        if paths is None:
                            misses += [f"  {kb} {direction} {q!r}: target {by_direction[direction][q]}, top {top}"
                                       for q, top in report.ranked.items() if by_direction[direction][q] not in top]
                    print(f"{kb:<8}{name:<13}" + "".join(cells))
            finally:
                retriever.close()
    print("\n".join(["fused misses:", *misses]) if misses else f"fused: every target in the top {k}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="home to ingest into (default: a temporary one)")
    ap.add_argument("--k", type=int, default=3)
    args = ap.parse_args()
    if args.home is not None:
        run(args.home, args.k)
        return
    with tempfile.TemporaryDirectory(prefix="sieve-crosslingual-") as home:
        run(Path(home), args.k)


if __name__ == "__main__":
    main()
