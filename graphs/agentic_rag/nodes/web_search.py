"""Web search: live results as passages for grading; says so plainly when it cannot search."""

from __future__ import annotations

import asyncio
import logging

from langgraph.runtime import Runtime

from sieve.degraded import Degraded
from sieve.graphs.shared.context import GraphContext, resolve
from sieve.graphs.shared.history import question
from sieve.graphs.shared.state import Passage, State
from sieve.prompts import refuse as refuse_prompts
from sieve.prompts.language import detect

logger = logging.getLogger(__name__)


async def web_search(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    q = question(state)
    lang = detect(q)
    if ctx.web is None:
        return {"passages": [], "refusal_reason": refuse_prompts.REASONS["web_not_configured"][lang]}
    try:
        results = await asyncio.wait_for(ctx.web.search(q, ctx.thresholds.top_k), ctx.web_timeout_s)
    except Exception:  # a dead search engine is reported, never papered over with invented results
        logger.warning("web search failed; the web question is refused", exc_info=True)
        return {
            "passages": [],
            "refusal_reason": refuse_prompts.REASONS["web_failed"][lang],
            "degraded": [Degraded.WEB_ERROR],
        }
    passages = [
        Passage(
            chunk_id=r.url, doc_id=r.url, filename=r.title or r.url, text=f"{r.title}\n{r.snippet}".strip(),
            score=1.0 / rank, relevance=None, path_scores={"web": 1.0 / rank},
        )
        for rank, r in enumerate(results, 1)
    ]
    reason = "" if passages else refuse_prompts.REASONS["web_empty"][lang]
    return {"passages": passages, "refusal_reason": reason, "rewritten_query": q}
