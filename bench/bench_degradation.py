"""The degradation ladder under injected faults: latency against the budget, and who answered.

    .venv/bin/python bench/bench_degradation.py [--queries 60] [--budget-ms 300]

The sample knowledge base (zh + en) is ingested into a temporary home with the offline embedder.
Each scenario runs the same questions one after another through `HybridRetriever.retrieve` with
`SIEVE_FAULTS`-style faults and the profile's `total_budget_ms` set to the budget: p50/p95/max
latency, how many calls returned hits, and the degraded flags. Faults delay by blocking a thread,
as a stuck engine does, so timed-out calls keep their pool's threads busy for the next queries.
Then whole questions through the graph (deterministic mode) under the embedder fault, set in the
settings as `SIEVE_FAULTS` would: it reaches every node that embeds (routing, retrieval, grading).
The first question after the fault starts pays one embedding budget (routing's
`embedder_timeout_ms`) and opens the embedder's breaker; the next ones fail fast until the cooldown
ends. Its latency is printed on its own line and is included in the p95.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from sieve.evals.metrics import percentile
from sieve.graphs.agentic_rag.runner import ask
from sieve.graphs.shared.wiring import build_context
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.faults import Faults
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.rerank import RerankerKind
from sieve.settings import Settings
from sieve.stores.catalog import get_kb
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "kb"
QUESTIONS = ["苹果公司是做什么的", "What does Apple Inc. do?", "山东哪里产苹果", "Where does the marathon come from?",
             "茶文化起源于哪里", "How does photosynthesis work?", "华为的总部在哪里", "Which phones does Apple make?"]
SCENARIOS = [
    ("no faults", "", RerankerKind.NONE),
    ("embedder delay 2 s", "embedder:delay=2s", RerankerKind.NONE),
    ("dense delay 2 s", "dense:delay=2s", RerankerKind.NONE),
    ("bm25 error", "bm25:error", RerankerKind.NONE),
    ("embedding rerank, no faults", "", RerankerKind.EMBEDDING),
    ("reranker error", "reranker:error", RerankerKind.EMBEDDING),
    ("reranker delay 2 s", "reranker:delay=2s", RerankerKind.EMBEDDING),
]


def line(label: str, latencies: list[float], answered: int, flags: Counter) -> str:
    flagged = ", ".join(f"{k} x{v}" for k, v in flags.most_common()) or "-"
    return (f"{label:<30} p50 {percentile(latencies, 50):7.1f}  p95 {percentile(latencies, 95):7.1f}  "
            f"max {max(latencies):7.1f} ms  answered {answered}/{len(latencies)}  {flagged}")


async def scenario(stack: Stack, flt: SearchFilter, faults: str, reranker: RerankerKind, budget_ms: int,
                   n: int) -> tuple[list[float], int, Counter]:
    retriever = HybridRetriever(stack, faults=Faults.parse(faults))
    profile = retriever.load_profile(flt.kb).merged(total_budget_ms=budget_ms, reranker=reranker, top_k=8)
    await retriever.retrieve("warm-up", flt, profile=profile)  # model loading is start-up cost
    latencies, answered, flags = [], 0, Counter()
    for i in range(n):
        t0 = time.perf_counter()
        result = await retriever.retrieve(QUESTIONS[i % len(QUESTIONS)], flt, profile=profile)
        latencies.append((time.perf_counter() - t0) * 1000)
        answered += bool(result.hits)
        flags.update(result.degraded)
    retriever.close()
    return latencies, answered, flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--budget-ms", type=int, default=300)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sieve-degradation-"))
    with Stack(Settings(home=home)) as stack:
        Ingestor(stack).ingest_paths([SAMPLES], "samples", "bench")
        with stack.sessions() as session:
            flt = SearchFilter("bench", get_kb(session, "bench", "samples").id)
        print(f"embedder {type(stack.embedder).__name__}; total budget {args.budget_ms} ms; "
              f"{args.queries} sequential queries per scenario; latency of HybridRetriever.retrieve\n")
        for label, faults, reranker in SCENARIOS:
            print(line(label, *asyncio.run(scenario(stack, flt, faults, reranker, args.budget_ms, args.queries))),
                  flush=True)

        # whole questions: the graph's retrieve node under the embedder fault, within the same budget
        nodes: Counter = Counter()

        async def graph_run() -> tuple[list[float], int, Counter]:
            with stack.sessions.begin() as session:
                get_kb(session, "bench", "samples").profile = {"total_budget_ms": args.budget_ms}
            # start-up cost (models, engines, routing exemplars) is paid before the fault starts
            healthy = build_context(stack)
            await ask("warm-up", kb="samples", tenant="bench", context=healthy, settings=Settings(home=home))
            stack.settings = stack.settings.model_copy(update={"faults": "embedder:delay=2s"})
            context = build_context(stack)
            latencies, answered, flags = [], 0, Counter()
            for i in range(args.queries):
                t0 = time.perf_counter()
                result = await ask(QUESTIONS[i % len(QUESTIONS)], kb="samples", tenant="bench", context=context,
                                   settings=Settings(home=home))
                latencies.append((time.perf_counter() - t0) * 1000)
                answered += not result.refused
                flags.update(result.degraded)
                nodes.update(result.timings_ms)
            for ctx in (healthy, context):
                ctx.retriever.hybrid.close()
            print(f"first question after the fault starts: {latencies[0]:.1f} ms")
            return latencies, answered, flags

        print("\nthe graph (sieve ask, deterministic), embedder delay 2 s in every node; answered = not refused")
        print(line("ask", *asyncio.run(graph_run())))
        print("mean ms per node: " + ", ".join(f"{k} {v / args.queries:.0f}" for k, v in nodes.most_common()))


if __name__ == "__main__":
    main()
