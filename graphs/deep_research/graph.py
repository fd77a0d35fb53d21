"""The deep-research graph: plan → execute (round after round) → synthesise.

`graph` is what `langgraph.json` serves as `deep_research`. One run is one question and stands
alone (no thread history): it plans sub-questions, retrieves for them in parallel rounds within
the knowledge base profile's `research_budget_ms` and `max_steps`, stops with a `StopReason`, and
writes a report with one cited section per sub-question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal, Protocol, runtime_checkable

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Overwrite
from pydantic import BaseModel, Field

from sieve.degraded import Degraded
from sieve.graphs.deep_research.executor import execute
from sieve.graphs.deep_research.planner import MAX_PARTS, asks_for_entity, hop_of, split_parts
from sieve.graphs.deep_research.state import ResearchState, SubQuestion
from sieve.graphs.deep_research.synthesis import synthesise
from sieve.graphs.shared.context import GraphContext, resolve, search_filter
from sieve.graphs.shared.history import question
from sieve.graphs.shared.llm import LLMFailed, decide, llm_for
from sieve.graphs.shared.nodes.common import timed
from sieve.graphs.shared.state import InputState
from sieve.prompts import research as prompts
from sieve.prompts.language import detect
from sieve.retrievers.profile import RetrievalProfile
from sieve.stores.types import SearchFilter

logger = logging.getLogger(__name__)


@runtime_checkable
class ProfiledRetriever(Protocol):
    """A retriever that can say the knowledge base's retrieval profile (the production one can)."""

    async def profile(self, flt: SearchFilter) -> RetrievalProfile: ...


class ResearchPlan(BaseModel):
    """The sub-questions to look up, in the order the report answers them."""

    # bounded, so a grammar-constrained model that repeats itself closes the list
    sub_questions: list[str] = Field(min_length=1, max_length=MAX_PARTS, description="self-contained sub-questions")


PLAN_SHARE = 0.25  # of the research budget, at most, for the LLM's plan

async def plan(state: ResearchState, runtime: Runtime[GraphContext]) -> ResearchState:
    started = time.time()
    ctx = await resolve(runtime.context)
    q = question(state)
    profile = RetrievalProfile()
    if isinstance(ctx.retriever, ProfiledRetriever):
        try:
            profile = await ctx.retriever.profile(search_filter(state))
        except Exception:  # an unknown KB is refused by the steps themselves, naming it
            logger.info("no stored profile for this research; the defaults apply", exc_info=True)
    deadline = started + profile.research_budget_ms / 1000
    flags: list[Degraded] = []
    parts: list[str] = []
    if llm := llm_for({}, ctx):
        lang = detect(q)
        try:
            # a slow model may spend a share of the budget planning, never all of it: the rule-based plan
            # and the rounds still run in the rest
            plan_s = min(ctx.llm_timeout_s, PLAN_SHARE * profile.research_budget_ms / 1000, deadline - time.time())
            decision = await decide(llm, ResearchPlan, [SystemMessage(prompts.PLAN[lang]), HumanMessage(q)],
                                    max(0.001, plan_s))
            parts = [part.strip() for part in decision.sub_questions if part.strip()][:MAX_PARTS]
        except LLMFailed as failure:
            flags.append(failure.kind)
    sub_questions: list[SubQuestion] = []
    pending: list[dict[str, Any]] = []
    # the entity rules POS-tag the question (and load their dictionary on first use): off the event loop
    for part in parts or await asyncio.to_thread(split_parts, q):
        sub_id = len(sub_questions)
        if (hop := hop_of(part)) is not None:
            sub_questions.append(SubQuestion(id=sub_id, question=hop.question, kind="bridge", subject=hop.subject,
                                             entity_type=hop.entity_type))
            sub_questions.append(SubQuestion(id=sub_id + 1, question=part, kind="hop", parent=sub_id,
                                             template=hop.template, entity_type=hop.entity_type))
            pending.append({"sub_question": sub_id, "query": hop.question})
        elif (asked := asks_for_entity(part)) is not None:
            sub_questions.append(SubQuestion(id=sub_id, question=part, kind="bridge", subject=asked[0],
                                             entity_type=asked[1]))
            pending.append({"sub_question": sub_id, "query": part})
        else:
            sub_questions.append(SubQuestion(id=sub_id, question=part, kind="part"))
            pending.append({"sub_question": sub_id, "query": part})
    return {
        "plan": sub_questions, "pending": pending, "tried": [], "rounds": 0, "max_steps": profile.max_steps,
        "deadline": deadline, "stop_reason": "", "sections": [], "citations": [], "answer": "", "refused_parts": [],
        "refused": False,
        # a fresh run on a persisted thread starts its reduced fields over; an Overwrite, which bypasses
        # their reducers, is no value of the fields' types
        "steps": Overwrite([]), "degraded": Overwrite([str(flag) for flag in flags]), "timings_ms": Overwrite({}),  # type: ignore[typeddict-item]
    }


async def after_execute(state: ResearchState) -> Literal["execute", "synthesise"]:
    return "synthesise" if state.get("stop_reason") else "execute"


def build_graph() -> CompiledStateGraph[ResearchState, GraphContext, InputState, ResearchState]:
    builder = StateGraph(ResearchState, context_schema=GraphContext, input_schema=InputState)
    for name, node in [("plan", plan), ("execute", execute), ("synthesise", synthesise)]:
        builder.add_node(name, timed(name, node))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "execute")
    builder.add_conditional_edges("execute", after_execute)
    builder.add_edge("synthesise", END)
    return builder.compile(name="deep_research")


graph = build_graph()
