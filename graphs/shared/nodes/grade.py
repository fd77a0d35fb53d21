"""Grade: keep only passages that can answer; when none survive, say why (the refusal reason)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from sieve.degraded import Degraded
from sieve.graphs.shared.context import GraphContext, resolve
from sieve.graphs.shared.grading import (
    Evidence,
    KeptReadings,
    Reading,
    answer_kind,
    gather_evidence,
    grade_evidence,
    ranked_by_relevance,
    read_passages,
    synonym_words,
    with_synonyms,
)
from sieve.graphs.shared.history import question
from sieve.graphs.shared.llm import LLMFailed, decide, llm_for
from sieve.graphs.shared.state import Passage, State
from sieve.models.guarded_embedder import EmbedderUnavailable, GuardedEmbedder
from sieve.prompts import grade as prompts
from sieve.prompts import refuse as refuse_prompts
from sieve.prompts.language import Lang, detect

# grading's CPU work (sentence splitting, POS tagging, the model's trees) is Python holding the GIL: a
# pool of its own, so concurrent turns neither fill the default executor that every request's
# authentication and knowledge-base lookup wait on, nor take the GIL from the event loop a thread each
_GRADING = ThreadPoolExecutor(2, thread_name_prefix="sieve-grade")
T = TypeVar("T")


async def _grading(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_GRADING, fn, *args)


class GradeDecision(BaseModel):
    """Which numbered passages contain what the answer needs."""

    # bounded, so a grammar-constrained model that repeats a number closes the list instead of filling max tokens
    relevant: list[int] = Field(max_length=10, description="numbers of the passages that help answer; empty if none")


async def grade(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    query = state.get("rewritten_query") or question(state)
    lang = detect(question(state) or query)
    degraded: list[Degraded] = []
    passages = state.get("passages", [])
    if not passages:
        if state.get("allowed_doc_ids") == [] and state.get("refusal_reason"):
            return {"kept": []}  # nothing could be searched, and the node that found out said why
        reason = "retrieval_failed" if Degraded.RETRIEVAL_ERROR in state.get("degraded", []) else "no_passages"
        return {"kept": [], "refusal_reason": _reason(reason, lang, state)}
    passages, unscored = await _with_relevance(passages, query, ctx.embedder, ctx.embedder_timeout_s, degraded)

    limits = ctx.thresholds.grade_limits(lang)
    if (calibrated := state.get("relevance_threshold")) is not None:
        # the knowledge base's reranker scores on its own scale, with its own calibrated threshold
        limits = dataclasses.replace(limits, min_relevance=calibrated)
    if unscored:
        # no relevance to threshold (no embedder to score with): the evidence alone decides
        degraded.append(Degraded.GRADE_UNSCORED)
        limits = dataclasses.replace(limits, min_relevance=float("-inf"))
    best = max((p["relevance"] or 0.0) for p in passages)
    if best < limits.min_relevance:  # nothing on topic: no LLM call, no evidence to read
        reason = _reason("below_threshold", lang, state, best=best, threshold=limits.min_relevance)
        return {"passages": passages, "kept": [], "refusal_reason": reason, "degraded": degraded}

    if llm := llm_for(state, ctx):
        listing = "\n\n".join(f"[{i}] {p['text']}" for i, p in enumerate(passages, 1))
        messages = [
            SystemMessage(prompts.SYSTEM[lang]),
            HumanMessage(prompts.USER[lang].format(question=query, passages=listing)),
        ]
        try:
            decision = await decide(llm, GradeDecision, messages, ctx.llm_timeout_s)
            kept = [passages[i - 1] for i in dict.fromkeys(decision.relevant) if 1 <= i <= len(passages)]
            kept = kept[: ctx.thresholds.max_kept]
            reason = "" if kept else _reason("not_relevant", lang, state)
            return {"passages": passages, "kept": kept, "refusal_reason": reason, "degraded": degraded}
        except LLMFailed as failure:
            degraded.append(failure.kind)

    ranked = ranked_by_relevance(passages)
    if state.get("allowed_doc_ids") and answer_kind(query, lang) == "other":
        # "找一下张伟2023年关于大模型训练的总结": the metadata conditions already chose the documents and
        # the question asks for them, not for a fact, so their passages on the topic are the answer
        kept = [p for p in ranked if (p["relevance"] or 0.0) >= limits.min_relevance][: ctx.thresholds.max_kept]
        return {"passages": passages, "kept": kept, "refusal_reason": "", "degraded": degraded}

    # sentence splitting and POS tagging of every passage: CPU work, off the event loop
    readings, evidence = await _grading(_read, query, ranked, lang)
    if ctx.embedder is not None and not unscored and (words := synonym_words(evidence, lang)):
        try:
            vectors = dict(zip(words, await ctx.embedder.aembed_words(words, ctx.embedder_timeout_s)))
            # matrix work over the word vectors (and, once, the model file's mean word vector): off the loop
            evidence = await _grading(with_synonyms, evidence, lang, lambda texts: np.stack([vectors[t] for t in texts]))
        except EmbedderUnavailable as unavailable:  # paraphrases go uncounted: the model refuses more, never less
            degraded += unavailable.flags
    # the model's trees (and, once, reading its file): off the event loop too
    graded = await _grading(grade_evidence, query, ranked, evidence, lang, limits, ctx.thresholds.max_kept)
    reason = ""
    if graded.outcome == "no_evidence":
        reason = _reason("no_evidence", lang, state) + (" " if lang == "en" else "") + graded.explanation
    # the answer quotes the kept passages: it reuses their reading instead of splitting and tagging them again
    position = {id(p): i for i, p in enumerate(ranked)}
    kept_readings = KeptReadings(query, lang, tuple(p["chunk_id"] for p in graded.kept),
                                 tuple(readings[position[id(p)]] for p in graded.kept))
    return {"passages": passages, "kept": graded.kept, "refusal_reason": reason, "degraded": degraded,
            "kept_readings": kept_readings}


def _read(query: str, ranked: list[Passage], lang: Lang) -> tuple[list[Reading], list[Evidence]]:
    readings = read_passages(query, ranked, lang)
    return readings, gather_evidence(query, ranked, lang, readings)


async def _with_relevance(
    passages: list[Passage], query: str, embedder: GuardedEmbedder | None, timeout_s: float, degraded: list[Degraded]
) -> tuple[list[Passage], bool]:
    """Passages with relevance filled in by embedding cosine where the retriever left it out.

    Returns whether some passage stayed unscored (no embedder, or one that did not answer in time:
    its flags land in `degraded`).
    """
    missing = [i for i, p in enumerate(passages) if p["relevance"] is None]
    if not missing:
        return passages, False
    if embedder is None:
        return passages, True
    try:
        query_vector = (await embedder.aembed_queries([query], timeout_s))[0]
        vectors = await embedder.aembed_passages([passages[i]["text"] for i in missing], timeout_s)
    except EmbedderUnavailable as unavailable:
        degraded += unavailable.flags
        return passages, True
    scored = list(passages)
    for i, value in zip(missing, (vectors @ query_vector).tolist()):
        scored[i] = {**scored[i], "relevance": float(value)}
    return scored, False


def _reason(kind: str, lang: Lang, state: State, **values: float) -> str:
    return refuse_prompts.REASONS[kind][lang].format(kb=state.get("kb", ""), **values)
