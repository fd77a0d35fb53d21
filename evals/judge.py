"""`sieve eval judge`: an LLM judges end-to-end answers (needs a configured LLM).

- faithfulness: the share of the answer's statements that the retrieved passages support;
- answer relevance: how fully the answer addresses the question (0..1);
- context precision: average precision of the retrieved passages, best first, with the judge's
  relevant/not-relevant label per passage (relevant passages ranked high score high).
Refusals are counted, not judged: a refusal has no statements to support.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from sieve.graphs.shared.llm import LLMFailed, decide

ANSWER_SYSTEM = """You grade an answer produced by a retrieval system. Judge only against the numbered \
passages, never against what you know yourself."""
ANSWER_USER = """Question: {question}

Passages:
{passages}

Answer: {answer}

Give `faithfulness`: the share (0 to 1) of the answer's statements that the passages support, and \
`answer_relevance`: how fully (0 to 1) the answer addresses the question."""
CONTEXT_SYSTEM = "You judge which retrieved passages help answer a question."
CONTEXT_USER = """Question: {question}

Passages:
{passages}

List in `relevant` the numbers of the passages that contain information needed to answer the question."""


class AnswerVerdict(BaseModel):
    faithfulness: float = Field(ge=0, le=1, description="share of the answer's statements the passages support")
    answer_relevance: float = Field(ge=0, le=1, description="how fully the answer addresses the question")


class ContextVerdict(BaseModel):
    # bounded, so a grammar-constrained judge that repeats a number closes the list instead of filling max tokens
    relevant: list[int] = Field(max_length=10, description="numbers of the passages needed to answer; empty if none")


@dataclass(frozen=True)
class Answered:
    """What the system under test did with one question."""

    answer: str
    refused: bool
    contexts: list[str]  # retrieved passages, best first


AnswerFn = Callable[[str], Awaitable[Answered]]


@dataclass
class JudgeReport:
    questions: int
    judged: int
    refused: int
    failed: int  # judge calls that timed out or failed
    metrics: dict[str, float] = field(default_factory=dict)
    per_question: list[dict] = field(default_factory=list)


def average_precision(relevant: Sequence[bool]) -> float:
    hits, total = 0, 0.0
    for rank, is_relevant in enumerate(relevant, start=1):
        if is_relevant:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def _listing(contexts: Sequence[str]) -> str:
    return "\n\n".join(f"[{i}] {text}" for i, text in enumerate(contexts, start=1))


async def judge_one(llm: BaseChatModel, question: str, answered: Answered, timeout_s: float) -> dict[str, float]:
    """Scores of one answer; raises `LLMFailed` when the judge fails."""
    passages = _listing(answered.contexts)
    context = await decide(llm, ContextVerdict, [SystemMessage(CONTEXT_SYSTEM),
                                                 HumanMessage(CONTEXT_USER.format(question=question, passages=passages))],
                           timeout_s)
    relevant = set(context.relevant)
    scores = {"context_precision": average_precision([i in relevant for i in range(1, len(answered.contexts) + 1)])}
    if not answered.refused:
        verdict = await decide(llm, AnswerVerdict, [SystemMessage(ANSWER_SYSTEM), HumanMessage(
            ANSWER_USER.format(question=question, passages=passages, answer=answered.answer))], timeout_s)
        scores |= {"faithfulness": verdict.faithfulness, "answer_relevance": verdict.answer_relevance}
    return scores


async def evaluate_judge(questions: Sequence[str], answer: AnswerFn, llm: BaseChatModel,
                         timeout_s: float = 60.0) -> JudgeReport:
    report = JudgeReport(len(questions), 0, 0, 0)
    sums: dict[str, list[float]] = {"faithfulness": [], "answer_relevance": [], "context_precision": []}
    for question in questions:
        answered = await answer(question)
        report.refused += answered.refused
        try:
            scores = await judge_one(llm, question, answered, timeout_s)
        except LLMFailed as failure:
            report.failed += 1
            report.per_question.append({"question": question, "error": failure.kind})
            continue
        report.judged += 1
        for key, value in scores.items():
            sums[key].append(value)
        report.per_question.append({"question": question, "refused": answered.refused, **scores})
    report.metrics = {key: round(sum(v) / len(v), 4) for key, v in sums.items() if v}
    return report
