"""Rewrite: a self-contained retrieval query; on the corrective retry, a looser one."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from sieve.graphs.agentic_rag.followup import rewrite_followup
from sieve.graphs.shared.context import GraphContext, resolve
from sieve.graphs.shared.history import earlier_turns, question, transcript
from sieve.graphs.shared.llm import LLMFailed, decide, llm_for
from sieve.graphs.shared.state import State
from sieve.graphs.shared.text import keywords
from sieve.prompts import rewrite as prompts
from sieve.prompts.language import detect


class RewriteDecision(BaseModel):
    """The self-contained search query."""

    # bounded, so a grammar-constrained model that rambles ends the string instead of filling max tokens
    query: str = Field(max_length=400, description="the rewritten question, in the user's language")


async def rewrite(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    q = question(state)
    lang = detect(q)
    turns = earlier_turns(state)
    retry = state.get("attempt", 0) > 0
    previous_q, previous_a = turns[-1] if turns else ("", "")
    # the deterministic rewrite also tracks the topic, which later turns need whatever the mode
    resolved = rewrite_followup(q, previous_q, previous_a, topic=state.get("topic", ""))
    update: State = {"topic": resolved.entity}

    # the retry drops question words and particles; adding the topic instead would pull its
    # documents above the threshold for questions that are not about it
    deterministic = keywords(state.get("rewritten_query") or q, lang) if retry else resolved.query

    # a first question without history needs no rewriting, so no LLM round trip either
    llm = llm_for(state, ctx) if (turns or retry) else None
    if llm is not None:
        ask = prompts.DIALOGUE[lang].format(history=transcript(turns) or "-", question=q)
        if retry:
            ask += "\n\n" + prompts.RETRY[lang].format(query=state.get("rewritten_query", q))
        messages = [SystemMessage(prompts.SYSTEM[lang]), HumanMessage(ask)]
        try:
            decision = await decide(llm, RewriteDecision, messages, ctx.llm_timeout_s)
            if decision.query.strip():
                return {**update, "rewritten_query": decision.query.strip()}
        except LLMFailed as failure:
            update["degraded"] = [failure.kind]
    return {**update, "rewritten_query": deterministic}
