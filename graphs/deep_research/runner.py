"""Running deep research for the CLI, the API and the tools: a stream of its steps, or the result.

Events (SSE-shaped `StreamEvent`s): plan {sub_questions} (again whenever a hop names its entity) ·
step {step, sub_question, question, query, sql, kept, timed_out} per sub-query, as it finishes (or is
abandoned at the deadline) · degraded {degraded} ·
stop {reason, steps} · token {text} (the report, a sentence at a time) · done {the `ResearchResult`}.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import HumanMessage

from sieve.graphs.deep_research.graph import graph as deep_research
from sieve.graphs.deep_research.state import ResearchState, Step, SubQuestion
from sieve.graphs.shared.context import GraphContext, default_context
from sieve.graphs.shared.events import StreamEvent, degraded_events, sentence_pieces
from sieve.graphs.shared.state import InputState
from sieve.prompts import research as prompts
from sieve.prompts.language import detect
from sieve.settings import get_settings


def sub_questions_json(plan: list[SubQuestion]) -> list[dict[str, Any]]:
    return [{"id": sub["id"], "question": sub["question"], "kind": sub["kind"]} for sub in plan]


def step_json(step: Step, plan: list[SubQuestion]) -> dict[str, Any]:
    """A step as clients see it: the kept passages as sources, without their text."""
    asked = next((sub["question"] for sub in plan if sub["id"] == step["sub_question"]), "")
    return {
        "step": step["step"], "sub_question": step["sub_question"], "question": asked, "query": step["query"],
        "sql": step["sql"], "timed_out": step["timed_out"],
        "kept": [{"doc_id": p["doc_id"], "filename": p["filename"], "chunk_id": p["chunk_id"],
                  "relevance": p["relevance"]} for p in step["kept"]],
    }


def result_json(question: str, state: ResearchState) -> dict[str, Any]:
    """What `sieve research --json` prints and the `done` event carries: the fields of an answer (as
    `sieve ask --json` has them), and how the research went under `research`."""
    plan = state.get("plan", [])
    refused_parts = state.get("refused_parts", [])
    lang = detect(question)
    return {
        "route": "research",  # the OpenAI surface's `sieve` fields and the run metrics read it
        "question": question,
        "answer": state.get("answer", ""),
        "refused": state.get("refused", False),
        "refusal_reason": prompts.REFUSED_PARTS[lang].format(parts="; ".join(refused_parts)) if refused_parts else "",
        "citations": state.get("citations", []),
        "degraded": state.get("degraded", []),
        "timings_ms": state.get("timings_ms", {}),
        "research": {
            "stop_reason": state.get("stop_reason", ""),
            "steps_used": state.get("rounds", 0),
            "plan": sub_questions_json(plan),
            "steps": [step_json(step, plan) for step in state.get("steps", [])],
            "sections": state.get("sections", []),
            "refused_parts": refused_parts,
        },
    }


async def stream_research(
    question: str, *, kb: str, tenant: str | None = None, context: GraphContext | None = None,
    readers: frozenset[str] | None = None,
) -> AsyncIterator[StreamEvent]:
    """Research one question, yielding its events as they happen, ending with `done`; only documents
    `readers` may read are searched (None: every document of the tenant)."""
    inputs: InputState = {"messages": [HumanMessage(question)], "tenant": tenant or get_settings().default_tenant,
                          "kb": kb, "readers": None if readers is None else sorted(readers)}
    if context is None:
        context = await asyncio.to_thread(default_context)  # may open stores: off the loop
    reported: list[str] = []
    final: ResearchState = {}
    plan: list[SubQuestion] = []
    async for part in deep_research.astream(inputs, context=context, stream_mode=["updates", "values", "custom"],
                                            version="v2"):
        if part["type"] == "values":
            final = part["data"]
            continue
        if part["type"] == "custom":  # a sub-query finished (or was abandoned)
            yield StreamEvent("step", step_json(part["data"]["step"], plan))
            continue
        if part["type"] != "updates":
            continue
        updates: dict[str, ResearchState | None] = part["data"]  # node -> its update (None: it changed nothing)
        for node, changed in updates.items():
            update = changed or ResearchState()
            if update.get("plan") and update["plan"] != plan:
                plan = update["plan"]
                yield StreamEvent("plan", {"sub_questions": sub_questions_json(plan)})
            for event in degraded_events(update, reported):
                yield event
            if node == "execute" and update.get("stop_reason"):
                yield StreamEvent("stop", {"reason": update["stop_reason"], "steps": update.get("rounds", 0)})
            if node == "synthesise":
                for piece in sentence_pieces(update.get("answer", "")):
                    yield StreamEvent("token", {"text": piece})
    yield StreamEvent("done", result_json(question, final))


async def research(
    question: str, *, kb: str, tenant: str | None = None, context: GraphContext | None = None
) -> dict[str, Any]:
    """The research's result (the `done` event's data)."""
    result: dict[str, Any] = {}
    async for event in stream_research(question, kb=kb, tenant=tenant, context=context):
        if event.type == "done":
            result = event.data
    return result
