"""Route: small talk (chat), live information (web) or the knowledge base (kb); starts every turn."""

from __future__ import annotations

import logging
from typing import Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from sieve.degraded import Degraded
from sieve.graphs.agentic_rag.exemplars import exemplar_scores
from sieve.graphs.agentic_rag.followup import is_followup
from sieve.graphs.agentic_rag.rules import needs_web, small_talk
from sieve.graphs.shared.context import GraphContext, resolve, search_filter
from sieve.graphs.shared.history import earlier_turns, question, transcript
from sieve.graphs.shared.llm import LLMFailed, decide
from sieve.graphs.shared.state import Route, State, fresh_turn
from sieve.models.guarded_embedder import EmbedderUnavailable
from sieve.prompts import route as prompts
from sieve.prompts.language import detect

logger = logging.getLogger(__name__)


class RouteDecision(BaseModel):
    """Where the latest user message goes."""

    # the route alone: a reason would cost every turn its tokens (seconds on a CPU) and nothing reads it
    route: Literal["chat", "web", "kb"] = Field(description="chat = small talk, web = live information, kb = knowledge base")


async def route(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    flags: list[Degraded] = []
    chosen = await _route(state, ctx, flags)
    return {**fresh_turn(flags), "route": chosen}


async def _route(state: State, ctx: GraphContext, flags: list[Degraded]) -> Route:
    q = question(state)
    # small talk is unambiguous by rule; an LLM round trip would only add latency
    if small_talk(q):
        return "chat"
    # a new turn: an LLM failure of an earlier turn does not keep this one deterministic
    if llm := ctx.llm:
        turns = transcript(earlier_turns(state))
        lang = detect(q)
        messages = [
            SystemMessage(prompts.SYSTEM[lang].format(kb=state.get("kb", ""))),
            HumanMessage(f"{turns}\n\nuser: {q}" if turns else q),
        ]
        try:
            return (await decide(llm, RouteDecision, messages, ctx.llm_timeout_s)).route
        except LLMFailed as failure:
            flags.append(failure.kind)
    try:
        return await _deterministic(state, ctx, q)
    except EmbedderUnavailable as unavailable:
        # rules found nothing and exemplars cannot be scored: the knowledge base is the safe default
        flags.extend(unavailable.flags)
        return "kb"


async def _deterministic(state: State, ctx: GraphContext, q: str) -> Route:
    if needs_web(q):
        return "web"
    # `state["route"]` is still the previous turn's: a follow-up stays where the conversation is
    if state.get("route") == "kb" and is_followup(q):
        return "kb"
    if ctx.embedder is None:
        return "kb"
    scores = await exemplar_scores(ctx.embedder, q, ctx.embedder_timeout_s)
    best: Route = "chat" if scores["chat"] >= scores["web"] else "web"
    if scores[best] - scores["kb"] < ctx.thresholds.exemplar_margin:
        return "kb"
    return "kb" if await _kb_covers(state, ctx, q) else best


async def _kb_covers(state: State, ctx: GraphContext, q: str) -> bool:
    """The retrieval probe: does the knowledge base hold a passage relevant enough to answer?"""
    if ctx.retriever is None:
        return False
    try:
        result = await ctx.retriever.retrieve(q, search_filter(state), 3)
    except Exception:  # a failing probe must not decide the route; retrieve reports the failure
        logger.warning("the routing probe's retrieval failed; routing by exemplars alone", exc_info=True)
        return False
    best = max((h.relevance for h in result.hits if h.relevance is not None), default=None)
    threshold = result.relevance_threshold if result.relevance_threshold is not None else ctx.thresholds.relevance(detect(q))
    return best is not None and best >= threshold
