"""Fusion settings on the development sets: each path alone, the shipped default, tuned per set and
one default for both, always reported on queries the choice never saw.

    .venv/bin/python bench/bench_fusion.py [--home bench/out/home] [--limit N]

Queries are halved by a hash of their id: settings are fitted on the first half and every figure is
nDCG@10 on the second. "tuned" is what `sieve eval tune` would choose on the set's fit half; "shared"
is the one setting that maximises, over both fit halves, the smaller margin of fused over the best
single path (how the shipped profile default is chosen). Corpora are ingested once into the home
(as bench/bench_retrieval.py does; re-runs reuse them).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sieve.evals.beir import load_split
from sieve.evals.tune import FusionSetting, candidate_settings, collect_runs, fold_of, path_scores, per_query_scores
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.settings import Settings
from sieve.stores.catalog import get_kb
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = [("scifact", "train"), ("rgb-zh", "dev")]
PATHS = ["bm25", "dense"]


def mean(scores: dict[str, float], qids: list[str]) -> float:
    return sum(scores[q] for q in qids) / max(1, len(qids))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=Path("bench/out/home"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=None, help="only the first N queries of each split")
    args = ap.parse_args()
    shipped = FusionSetting.of(RetrievalProfile(), PATHS)
    settings = [shipped] + [s for s in candidate_settings(PATHS) if s != shipped]
    per_set = {}
    with Stack(Settings(home=args.home)) as stack:
        for name, split_name in SETS:
            split = load_split(args.data / name, split_name)
            if args.limit:
                split.queries = dict(list(split.queries.items())[: args.limit])
            Ingestor(stack).ingest_beir(split.corpus, f"eval-{name}", "bench", progress=True)
            with stack.sessions() as session:
                flt = SearchFilter("bench", get_kb(session, "bench", f"eval-{name}").id)
            retriever = HybridRetriever(stack)
            runs = asyncio.run(collect_runs(retriever, flt, split, PATHS, RetrievalProfile(), progress=True))
            retriever.close()
            if runs.degraded:  # a path that failed would make every figure below meaningless
                raise SystemExit(f"{name}: {runs.degraded} retrievals degraded (see the log); not reporting")
            qids = list(runs.ranked)
            fit = [q for q in qids if fold_of(q, 2) == 0]
            held = [q for q in qids if fold_of(q, 2) == 1]
            table = {s: per_query_scores(runs, split, s) for s in settings}
            singles = {p: path_scores(runs, split, p) for p in PATHS}
            per_set[name] = (fit, held, table, singles)
    # the shared default: the best worst-case margin over the best single path, on the fit halves only
    def margin(s: FusionSetting) -> float:
        return min(mean(t[s], fit) - max(mean(sc, fit) for sc in singles.values()) for fit, _, t, singles in per_set.values())

    shared = max(settings, key=margin)
    print(f"\nshared default (fitted on the fit halves): {shared.label()}")
    print(f"{'set':<9}{'held-out q':>11}{'bm25':>9}{'dense':>9}{'shipped':>9}{'tuned':>9}{'shared':>9}  tuned setting")
    for name, (fit, held, table, singles) in per_set.items():
        tuned = max(settings, key=lambda s: mean(table[s], fit))
        row = [mean(singles["bm25"], held), mean(singles["dense"], held), mean(table[shipped], held),
               mean(table[tuned], held), mean(table[shared], held)]
        print(f"{name:<9}{len(held):>11}" + "".join(f"{v:>9.4f}" for v in row) + f"  {tuned.label()}")
    print(f"shipped = the profile default ({shipped.label()}); all figures nDCG@10 on the held-out halves")


if __name__ == "__main__":
    main()
