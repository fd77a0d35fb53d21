"""Chat: small talk, answered without retrieval (by the LLM, or by canned replies)."""

from __future__ import annotations

import uuid

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from sieve.degraded import Degraded
from sieve.graphs.agentic_rag.rules import small_talk
from sieve.graphs.shared.context import GraphContext, resolve
from sieve.graphs.shared.history import earlier_turns, question
from sieve.graphs.shared.llm import LLMFailed, generate, llm_for
from sieve.graphs.shared.state import State
from sieve.prompts import chat as prompts
from sieve.prompts.language import detect


async def chat(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    q = question(state)
    lang = detect(q)
    kb = state.get("kb", "")
    degraded: list[Degraded] = []
    if llm := llm_for(state, ctx):
        messages: list[BaseMessage] = [SystemMessage(prompts.SYSTEM[lang].format(kb=kb))]
        for asked, answered in earlier_turns(state):
            messages += [HumanMessage(asked), AIMessage(answered)]
        messages.append(HumanMessage(q))
        try:
            reply = await generate(llm, messages, ctx.llm_timeout_s)
            return {"answer": reply.text, "messages": [reply]}
        except LLMFailed as failure:
            degraded.append(failure.kind)
    text = prompts.REPLIES[small_talk(q) or "other"][lang].format(kb=kb)
    return {"answer": text, "messages": [AIMessage(content=text, id=str(uuid.uuid4()))], "degraded": degraded}
