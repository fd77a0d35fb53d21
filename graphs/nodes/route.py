"""Route: small talk (chat), live information (web) or the knowledge base (kb); starts every turn."""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from sieve.graphs.context import GraphContext, resolve, search_filter
from sieve.graphs.exemplars import exemplar_scores
from sieve.graphs.followup import is_followup
from sieve.graphs.history import earlier_turns, question, transcript
from sieve.graphs.llm import LLMFailed, decide, llm_for
from sieve.graphs.rules import needs_web, small_talk
from sieve.graphs.state import Route, State, fresh_turn
from sieve.models.guarded_embedder import EmbedderUnavailable
from sieve.prompts import route as prompts
from sieve.prompts.language import detect


class RouteDecision(BaseModel):
    """Where the latest user message goes."""

    route: Literal["chat", "web", "kb"] = Field(description="chat = small talk, web = live information, kb = knowledge base")
    reason: str = Field(description="one short sentence")


async def route(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    update = fresh_turn()
    q = question(state)
    # small talk is unambiguous by rule; an LLM round trip would only add latency
    if small_talk(q):
        return {**update, "route": "chat"}
    if llm := llm_for(update, ctx):
        turns = transcript(earlier_turns(state))
        lang = detect(q)
        messages = [
            SystemMessage(prompts.SYSTEM[lang].format(kb=state.get("kb", ""))),
            HumanMessage(f"{turns}\n\nuser: {q}" if turns else q),
        ]
        try:
            decision = await decide(llm, RouteDecision, messages, ctx.llm_timeout_s)
            return {**update, "route": decision.route}
        except LLMFailed as failure:
            update["degraded"] = [failure.kind]
    try:
        return {**update, "route": await _deterministic(state, ctx, q)}
    except EmbedderUnavailable as unavailable:
        # rules found nothing and exemplars cannot be scored: the knowledge base is the safe default
        return {**update, "route": "kb", "degraded": [*update.get("degraded", []), *unavailable.flags]}


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
        return False
    best = max((h.relevance for h in result.hits if h.relevance is not None), default=None)
    threshold = result.relevance_threshold if result.relevance_threshold is not None else ctx.thresholds.relevance(detect(q))
    return best is not None and best >= threshold
