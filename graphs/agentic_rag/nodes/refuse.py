"""Refuse: an explicit outcome with a reason, never an empty or invented answer."""

from __future__ import annotations

import uuid

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.history import question
from sieve.graphs.shared.state import State
from sieve.prompts import refuse as prompts
from sieve.prompts.language import detect


async def refuse(state: State, runtime: Runtime[GraphContext]) -> State:
    lang = detect(question(state))
    kb = state.get("kb", "")
    reason = state.get("refusal_reason") or prompts.REASONS["no_passages"][lang].format(kb=kb)
    text = prompts.MESSAGE[lang].format(reason=reason)
    if state.get("route") == "web":
        text += (" " if lang == "en" else "") + prompts.OFFER_KB[lang].format(kb=kb)
    return {
        "answer": text,
        "refused": True,
        "refusal_reason": reason,
        "citations": [],
        "kept": [],
        "messages": [AIMessage(content=text, id=str(uuid.uuid4()))],
    }
