"""Narrow: restrict the corpus by document metadata (NL2SQL) before retrieval; optional."""

from __future__ import annotations

import logging

from langchain_core.runnables import RunnableLambda
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime

from sieve.degraded import Degraded
from sieve.graphs.shared.context import GraphContext, Narrowing, resolve, search_filter
from sieve.graphs.shared.history import question
from sieve.graphs.shared.nodes.common import unknown_kb
from sieve.graphs.shared.state import Passage, State
from sieve.prompts import refuse as refuse_prompts
from sieve.prompts.language import detect
from sieve.stores.catalog import KnowledgeBaseNotFound

logger = logging.getLogger(__name__)
SQL_ROWS = "sql"  # chunk id of the passage that holds a metadata query's rows


async def narrow(state: State, runtime: Runtime[GraphContext]) -> State:
    ctx = await resolve(runtime.context)
    query = state.get("rewritten_query") or question(state)
    flt = search_filter(state)

    async def call(q: str) -> Narrowing:
        return await ctx.narrow(q, flt.tenant, flt.kb, flt.readers)

    # run as a tagged child run so the narrowing function's own LLM calls stay out of the stream
    try:
        result = await RunnableLambda(call, name="narrowing").with_config(tags=[TAG_NOSTREAM]).ainvoke(query)
    except KnowledgeBaseNotFound:  # the caller's mistake, not an outage: the refusal names the KB
        return unknown_kb(state)
    except Exception:  # narrowing is an optimisation: without it the whole KB is searched
        # the exception's text can name server paths: it goes to the log, the reason to the user
        logger.warning("metadata narrowing failed; searching the whole knowledge base", exc_info=True)
        return {"degraded": [Degraded.NARROW_ERROR],
                "narrow_reason": "narrowing by metadata failed; the whole knowledge base was searched"}
    update: State = {
        "sql": result.sql,
        "allowed_doc_ids": None if result.doc_ids is None else sorted(result.doc_ids),
        "narrow_reason": result.reason,
    }
    if result.content_query.strip():
        update["rewritten_query"] = result.content_query.strip()
    if result.metadata_answer and result.rows:
        update["kept"] = [_rows_passage(result)]
        if any(col.lower() == "id" for col in result.columns):  # rows are documents, not an aggregate
            update["listed_documents"] = len(result.rows)
    elif result.doc_ids is not None and not result.doc_ids:
        lang = detect(query)
        update["refusal_reason"] = refuse_prompts.REASONS["filter_empty"][lang].format(detail=result.reason)
    return update


def _rows_passage(result: Narrowing) -> Passage:
    """The metadata rows as one passage, one line per row, so answering and citing work unchanged."""
    # a listing reads as one document a line, ids left out: "2023年第二季度工作总结 · zw-2023-q2.md · 张伟 · 2023-06-30";
    # an aggregate keeps its column names: "documents: 8"
    shown = [i for i, col in enumerate(result.columns) if col.lower() != "id"]
    if len(shown) < len(result.columns):
        lines = [" · ".join(_cell(row[i]) for i in shown) for row in result.rows]
    else:
        lines = ["；".join(f"{col}: {_cell(val)}" for col, val in zip(result.columns, row)) for row in result.rows]
    return Passage(
        chunk_id=SQL_ROWS, doc_id="metadata", filename="metadata (SQL)", text="\n".join(lines),
        score=1.0, relevance=1.0, path_scores={"sql": 1.0},
    )


def _cell(value: object) -> str:
    text = str(value)
    # timestamps read as dates: the time of day of an upload is noise in a listing
    return text[:10] if len(text) >= 19 and text[4] == "-" and text[10] in " T" else text
