"""Refuse: an explicit outcome with a reason, never an empty or invented answer."""

from __future__ import annotations

import uuid

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from sieve.graphs.context import GraphContext
from sieve.graphs.history import question
from sieve.graphs.state import State
from sieve.prompts import refuse as prompts
from sieve.prompts.language import detect


def unknown_kb(state: State) -> State:
    """The update of a node that found the turn's knowledge base missing: nothing can be searched
    (an empty allow-list, so nothing retries) and the refusal names it."""
    reason = prompts.REASONS["unknown_kb"][detect(question(state))].format(kb=state.get("kb", ""))
    return {"passages": [], "allowed_doc_ids": [], "refusal_reason": reason}


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
