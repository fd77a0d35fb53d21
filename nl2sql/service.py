"""NL2SQL as the graph's `narrow` step and the CLI's `nl2sql` commands.

`select_documents` turns the metadata conditions of a question into a document-id allow-list (or, for a question
about the documents themselves, into the answer). With a chat model it asks the model for SQL; without
one, or when the model's answer fails in any way, it falls back to slot filling. Either way the SQL goes
through the same guard and runs read-only with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sieve.models.chat import structured
from sieve.nl2sql.compile import compile_slots
from sieve.nl2sql.executor import DEFAULT_TIMEOUT_S, QueryResult, execute
from sieve.nl2sql.guard import DEFAULT_MAX_ROWS, Dialect, SQLRefused, SQLRejected, guard
from sieve.nl2sql.schema import MetadataValues, describe_schema, metadata_allowlist, read_values
from sieve.nl2sql.slots import fill_slots

# More matching documents than this and the condition is too broad to be worth an allow-list.
MAX_NARROW_IDS = 5000

NL2SQL_PROMPT = """You turn a user's question about a document collection into one SQL query over the \
document metadata, or decide that the question has no metadata condition.

{schema}

Today is {today}. Rules:
- Write exactly one SELECT (WITH ... SELECT is fine). Use only the tables and columns listed above.
- Never filter by tenant and never add a status condition: the system adds them.
- When the question names documents by owner/author, date, file name, tag or knowledge base, select \
documents.id as the first column and those conditions in WHERE. Use values exactly as listed above.
- Dates: created_at is a UTC timestamp; use half-open ranges (created_at >= start AND created_at < end).
- tags is a JSON array of strings; meta is a JSON object of user-defined keys.
- metadata_answer is true when the question only asks which/how many documents match (a listing or a \
count), false when it asks about what the documents say.
- content_query is what remains to search for in the documents' text once the metadata conditions are \
removed (empty when metadata_answer is true).
- If the question has no metadata condition at all, return sql = null and content_query = the question."""


class SQLDraft(BaseModel):
    """The model's reply (structured output)."""

    sql: str | None = Field(None, description="one SELECT over the listed tables, or null when nothing to filter")
    metadata_answer: bool = Field(False, description="true when the question only asks for documents by metadata")
    content_query: str = Field("", description="the content part of the question, without the metadata conditions")


@dataclass(frozen=True)
class NarrowResult:
    sql: str | None  # the guarded SQL as it ran; None when nothing was narrowed
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    doc_ids: frozenset[str] | None = None  # None = no metadata condition: do not narrow
    metadata_answer: bool = False  # rows answer the question; no retrieval needed
    content_query: str = ""
    reason: str = ""  # how the result came about, including why a model's SQL was not used
    mode: Literal["llm", "deterministic"] = "deterministic"

    def to_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "columns": self.columns,
            "rows": [[v if isinstance(v, (int, float, str, type(None))) else str(v) for v in r] for r in self.rows],
            "doc_ids": sorted(self.doc_ids) if self.doc_ids is not None else None,
            "metadata_answer": self.metadata_answer,
            "content_query": self.content_query,
            "reason": self.reason,
            "mode": self.mode,
        }


log = logging.getLogger(__name__)
Bind = Engine | sessionmaker[Session]


def select_documents(
    question: str,
    tenant: str,
    kb_id: str | None,
    bind: Bind,
    llm: BaseChatModel | None = None,
    now: datetime | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    readers: frozenset[str] | None = None,
) -> NarrowResult:
    """Find the metadata conditions of `question` and the documents of `tenant` (in `kb_id`, readable
    with `readers`) meeting them."""
    engine = _engine(bind)
    now = now or datetime.now(UTC)
    values = read_values(engine, tenant, kb_id, readers=readers)
    fallback_reason = ""
    if llm is not None:
        try:
            return _narrow_llm(question, tenant, kb_id, engine, llm, values, now, timeout_s, readers)
        except SQLRefused as err:
            fallback_reason = f"model SQL not used: {err.reason}; "
        except Exception:
            # the exception's text is for the log: the reason is shown to users
            log.warning("the model's SQL failed; narrowing by slot filling instead", exc_info=True)
            fallback_reason = "model SQL not used: the model failed (the server log has why); "
    try:
        result = _narrow_slots(question, tenant, kb_id, engine, values, now, timeout_s, readers)
    except SQLRefused as err:  # e.g. a timeout: retrieve without narrowing
        return NarrowResult(sql=None, content_query=question, reason=f"{fallback_reason}not narrowed: {err.reason}")
    return replace(result, reason=fallback_reason + result.reason)


async def aselect_documents(
    question: str,
    tenant: str,
    kb_id: str | None,
    bind: Bind,
    llm: BaseChatModel | None = None,
    now: datetime | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    readers: frozenset[str] | None = None,
) -> NarrowResult:
    return await asyncio.to_thread(select_documents, question, tenant, kb_id, bind, llm, now, timeout_s=timeout_s,
                                   readers=readers)


def _narrow_slots(
    question: str, tenant: str, kb_id: str | None, engine: Engine, values: MetadataValues, now: datetime, timeout_s: float,
    readers: frozenset[str] | None,
) -> NarrowResult:
    slots = fill_slots(question, values, now, match_kb_names=kb_id is None)
    if not slots.has_conditions and not slots.metadata_question:
        return NarrowResult(sql=None, content_query=slots.content_query, reason="no metadata condition found")
    sql = compile_slots(slots, dialect=_dialect(engine))
    guarded, result = _run(sql, tenant, kb_id, engine, timeout_s, readers)
    narrowed = _result(guarded, result, slots.metadata_question, slots.content_query, "deterministic", "slot filling")
    # "列出所有文档" lists documents but sets no condition: nothing to narrow retrieval by.
    return narrowed if slots.has_conditions else replace(narrowed, doc_ids=None)


def _narrow_llm(
    question: str,
    tenant: str,
    kb_id: str | None,
    engine: Engine,
    llm: BaseChatModel,
    values: MetadataValues,
    now: datetime,
    timeout_s: float,
    readers: frozenset[str] | None,
) -> NarrowResult:
    dialect = _dialect(engine)
    prompt = NL2SQL_PROMPT.format(schema=describe_schema(values, dialect=dialect), today=now.date().isoformat())
    reply = structured(llm, SQLDraft).invoke([SystemMessage(prompt), HumanMessage(question)])
    draft = reply if isinstance(reply, SQLDraft) else SQLDraft.model_validate(reply)
    if not draft.sql or not draft.sql.strip():
        return NarrowResult(sql=None, content_query=draft.content_query or question,
                            reason="model: no metadata condition", mode="llm")
    guarded, result = _run(draft.sql, tenant, kb_id, engine, timeout_s, readers)
    if not draft.metadata_answer and _id_column(result) is None:
        raise SQLRejected("the query must return documents.id to narrow retrieval")
    return _result(guarded, result, draft.metadata_answer, draft.content_query, "llm", "model SQL")


def _run(
    sql: str, tenant: str, kb_id: str | None, engine: Engine, timeout_s: float, readers: frozenset[str] | None
) -> tuple[str, QueryResult]:
    guarded = guard(sql, metadata_allowlist(kb_id), tenant=tenant, readers=readers, dialect=_dialect(engine),
                    max_rows=MAX_NARROW_IDS)
    return guarded, execute(engine, guarded, max_rows=MAX_NARROW_IDS, timeout_s=timeout_s)


def _result(
    sql: str, result: QueryResult, metadata_answer: bool, content_query: str, mode: Literal["llm", "deterministic"], how: str
) -> NarrowResult:
    id_index = _id_column(result)
    doc_ids: frozenset[str] | None = None
    reason = f"{how}: {len(result.rows)} matching documents"
    if id_index is not None:
        if len(result.rows) >= MAX_NARROW_IDS:
            reason = f"{how}: {MAX_NARROW_IDS} or more documents match; too broad to narrow"
        else:
            doc_ids = frozenset(str(r[id_index]) for r in result.rows)
    return NarrowResult(
        sql=sql,
        rows=result.rows,
        columns=result.columns,
        doc_ids=doc_ids,
        metadata_answer=metadata_answer,
        content_query=content_query,
        reason=reason,
        mode=mode,
    )


def _id_column(result: QueryResult) -> int | None:
    return next((i for i, c in enumerate(result.columns) if c.lower() == "id"), None)


def check_sql(
    sql: str, tenant: str, kb_id: str | None = None, *, dialect: Dialect = "sqlite", max_rows: int = DEFAULT_MAX_ROWS
) -> str:
    """`sieve nl2sql check`: the statement as the guard would run it, or `SQLRejected` with the reason."""
    return guard(sql, metadata_allowlist(kb_id), tenant=tenant, dialect=dialect, max_rows=max_rows)


def run_sql(
    sql: str, tenant: str, bind: Bind, kb_id: str | None = None, *, max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[str, QueryResult]:
    """`sieve nl2sql check --db`: guard, then run read-only; returns the guarded SQL and its rows."""
    engine = _engine(bind)
    guarded = check_sql(sql, tenant, kb_id, dialect=_dialect(engine), max_rows=max_rows)
    return guarded, execute(engine, guarded, max_rows=max_rows, timeout_s=timeout_s)


def _engine(bind: Bind) -> Engine:
    if isinstance(bind, Engine):
        return bind
    engine = bind.kw.get("bind")
    if not isinstance(engine, Engine):
        raise ValueError("the session factory is not bound to an engine")
    return engine


def _dialect(engine: Engine) -> Dialect:
    if engine.dialect.name == "sqlite":
        return "sqlite"
    if engine.dialect.name == "postgresql":
        return "postgres"
    raise ValueError(f"unsupported database {engine.dialect.name}")
