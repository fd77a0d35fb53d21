"""Answer: from the kept passages only, with numbered citations; streamed in LLM mode."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from sieve.degraded import Degraded
from sieve.graphs.shared.context import GraphContext, resolve
from sieve.graphs.shared.extractive import best_quote, cite, extractive_answer
from sieve.graphs.shared.grading import KeptReadings
from sieve.graphs.shared.history import question
from sieve.graphs.shared.llm import LLMFailed, generate, llm_for
from sieve.graphs.shared.nodes.narrow import SQL_ROWS
from sieve.graphs.shared.state import Passage, State
from sieve.prompts import answer as prompts
from sieve.prompts.language import detect

_MAX_IMAGES = 4  # page regions per answer: each costs the model hundreds of tokens


async def _with_page_images(ask: str, kept: list[Passage], ctx: GraphContext) -> str | list[str | dict[str, Any]]:
    """The question, then the page region of each cited scan or image (OpenAI vision content parts)."""
    assert ctx.page_image is not None
    parts: list[str | dict[str, Any]] = [{"type": "text", "text": ask}]
    for n, passage in enumerate(kept, 1):
        if "location" not in passage or len(parts) > 2 * _MAX_IMAGES:
            continue
        jpeg = await asyncio.to_thread(ctx.page_image, passage["doc_id"], passage["chunk_id"])
        if jpeg:
            parts.append({"type": "text", "text": f"[{n}] as it appears on page {passage['location']['page']}:"})
            parts.append({"type": "image_url",
                          "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}})
    return parts if len(parts) > 1 else ask


async def answer(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    q = question(state)
    query = state.get("rewritten_query") or q
    lang = detect(q or query)
    kept = state.get("kept", [])

    if kept and all(p["chunk_id"] == SQL_ROWS for p in kept):  # a metadata question: list the rows
        listing = kept[0]
        listed = state.get("listed_documents", 0)
        header = prompts.METADATA_LISTING[lang].format(n=listed) + "\n" if listed else ""
        text = header + listing["text"] + ("" if listed else " [1]")
        return {
            "answer": text,
            "citations": [cite(listing, listing["text"])],
            "messages": [AIMessage(content=text, id=str(uuid.uuid4()))],
        }

    degraded: list[Degraded] = []
    if llm := llm_for(state, ctx):
        sources = "\n\n".join(f"[{i}] ({p['filename']}) {p['text']}" for i, p in enumerate(kept, 1))
        ask = prompts.QUESTION[lang].format(question=query)
        messages = [
            SystemMessage(prompts.SYSTEM[lang].format(passages=sources)),
            HumanMessage(await _with_page_images(ask, kept, ctx) if ctx.page_image else ask),
        ]
        try:
            reply = await generate(llm, messages, ctx.llm_timeout_s)
            # numbering must match the prompt's, so every kept passage is a citation
            citations = [cite(p, best_quote(query, p, lang)) for p in kept]
            return {"answer": reply.text, "citations": citations, "messages": [reply]}
        except LLMFailed as failure:
            degraded.append(failure.kind)

    # grading's reading of these passages, when grading kept them for this question
    read = state.get("kept_readings")
    readings = read.of(query, lang, kept) if isinstance(read, KeptReadings) else None
    text, citations = extractive_answer(query, kept, lang, ctx.thresholds.answer_sentences, readings)
    return {
        "answer": text,
        "citations": citations,
        "messages": [AIMessage(content=text, id=str(uuid.uuid4()))],
        "degraded": degraded,
    }
