"""`sieve eval rewrite`: the rewrite node against human rewrites of follow-up utterances.

Each dialogue (`rewrite-zh/dialogs.jsonl`) has two history turns, the current utterance and its
human rewrite. The graph's own rewrite node runs on it (deterministic, or with the configured
LLM), so the eval measures what production does. Metrics: exact match, character F1 (Chinese has no
word boundaries to agree on) and ROUGE-L F1 over characters; the current utterance left as it is
gives the baseline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime

from sieve.evals.jsonl import read_rows
from sieve.graphs.agentic_rag.nodes.rewrite import rewrite
from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.state import State


@dataclass(frozen=True)
class Dialog:
    id: str
    history: list[str]  # alternating speakers, oldest first
    current: str
    rewrite: str


def load_dialogs(path: Path, limit: int | None = None) -> list[Dialog]:
    dialogs = read_rows(path, lambda d: Dialog(str(d["id"]), list(d["history"]), d["current"], d["rewrite"]),
                        "a dialogue with id, history, current and rewrite")
    return dialogs[:limit] if limit else dialogs


def _chars(text: str) -> list[str]:
    return [c for c in text if not c.isspace()]


def char_f1(predicted: str, reference: str) -> float:
    p, r = _chars(predicted), _chars(reference)
    common = sum((Counter(p) & Counter(r)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def rouge_l(predicted: str, reference: str) -> float:
    """F1 of the longest common subsequence of characters."""
    p, r = _chars(predicted), _chars(reference)
    if not p or not r:
        return 0.0
    row = [0] * (len(r) + 1)
    for a in p:
        previous = 0
        for j, b in enumerate(r, start=1):
            previous, row[j] = row[j], previous + 1 if a == b else max(row[j], row[j - 1])
    lcs = row[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


@dataclass
class RewriteReport:
    name: str
    dialogs: int
    metrics: dict[str, float] = field(default_factory=dict)
    degraded: int = 0  # LLM calls that fell back to the deterministic rewrite
    examples: list[dict[str, str]] = field(default_factory=list)  # a few misses, to read


def score(name: str, dialogs: Sequence[Dialog], predicted: Sequence[str], degraded: int = 0) -> RewriteReport:
    n = max(1, len(dialogs))
    metrics = {
        "exact": sum(p.strip() == d.rewrite.strip() for p, d in zip(predicted, dialogs)) / n,
        "char_f1": sum(char_f1(p, d.rewrite) for p, d in zip(predicted, dialogs)) / n,
        "rouge_l": sum(rouge_l(p, d.rewrite) for p, d in zip(predicted, dialogs)) / n,
    }
    misses = [{"current": d.current, "predicted": p, "reference": d.rewrite}
              for p, d in zip(predicted, dialogs) if p.strip() != d.rewrite.strip()][:5]
    return RewriteReport(name, len(dialogs), {k: round(v, 4) for k, v in metrics.items()}, degraded, misses)


class _NoRetrieval:
    """The rewrite node never retrieves; a retriever in the context keeps `resolve` from opening stores."""

    async def retrieve(self, *args: object) -> None:
        raise RuntimeError("the rewrite eval does not retrieve")


async def run_rewriter(dialogs: Sequence[Dialog], llm: BaseChatModel | None, timeout_s: float = 20.0) -> tuple[list[str], int]:
    """The rewrite node's query for each dialogue, and how many LLM calls degraded."""
    runtime = Runtime(context=GraphContext(retriever=_NoRetrieval(), llm=llm, llm_timeout_s=timeout_s))
    predicted, degraded = [], 0
    for d in dialogs:
        messages = [HumanMessage(t) if i % 2 == 0 else AIMessage(t) for i, t in enumerate(d.history)]
        state = State(messages=[*messages, HumanMessage(d.current)], degraded=[])
        update = await rewrite(state, runtime)
        predicted.append(update["rewritten_query"])
        degraded += bool(update.get("degraded"))
    return predicted, degraded


async def evaluate_rewrite(dialogs: Sequence[Dialog], llm: BaseChatModel | None = None) -> list[RewriteReport]:
    """The unchanged utterance (baseline), the deterministic rewriter, and the LLM one when given."""
    reports = [score("unchanged", dialogs, [d.current for d in dialogs])]
    predicted, _ = await run_rewriter(dialogs, None)
    reports.append(score("deterministic", dialogs, predicted))
    if llm is not None:
        predicted, degraded = await run_rewriter(dialogs, llm)
        reports.append(score("llm", dialogs, predicted, degraded))
    return reports
