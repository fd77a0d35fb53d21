"""`sieve eval nl2sql`: execution accuracy on a question/gold-SQL set over a SQLite file.

With an LLM, each question becomes SQL (structured output), passes the same guard production uses,
runs read-only, and counts when its rows equal the gold query's rows as multisets. Without one,
deterministic mode cannot write arbitrary SQL (its slot filler knows only the document metadata),
so what is measured there is the guard's pass-rate on the gold SQL: guarded, does each return
exactly the rows it returns unguarded.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from sieve.evals.jsonl import read_rows
from sieve.graphs.shared.llm import LLMFailed, decide
from sieve.nl2sql.executor import SQLExecutionError, execute_sqlite
from sieve.nl2sql.guard import SQLRejected, guard
from sieve.nl2sql.schema import sqlite_allowlist

MAX_ROWS = 10_000  # above the largest gold result, so the guard's LIMIT truncates nothing

PROMPT = """You write one SQLite SELECT that answers the user's question over this database.

{schema}

Reply with the SQL only, in the `sql` field. Use only the tables and columns above."""


class SQLAnswer(BaseModel):
    sql: str = Field(description="one SQLite SELECT statement")


@dataclass(frozen=True)
class Question:
    question: str
    sql: str


def load_questions(data: Path, limit: int | None = None) -> list[Question]:
    rows = read_rows(data / "questions.jsonl", lambda q: Question(q["question"], q["sql"]), "a question with its sql")
    return rows[:limit] if limit else rows


@dataclass
class NL2SQLReport:
    name: str
    questions: int
    passed: int
    accuracy: float
    failures: dict[str, int] = field(default_factory=dict)  # reason kind -> count
    examples: list[dict[str, str]] = field(default_factory=list)


def _gold_rows(db: Path, sql: str) -> Counter:
    direct = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return Counter(direct.execute(sql).fetchall())
    finally:
        direct.close()


def _run_guarded(db: Path, sql: str, rules: dict) -> Counter:
    guarded = guard(sql, rules, tenant=None, dialect="sqlite", max_rows=MAX_ROWS)
    return Counter(execute_sqlite(db, guarded, max_rows=MAX_ROWS, timeout_s=10).rows)


def _report(name: str, outcomes: Sequence[tuple[str, str, str]]) -> NL2SQLReport:
    """`outcomes`: (question, sql, failure kind or "") per question."""
    passed = sum(not kind for _, _, kind in outcomes)
    failures = Counter(kind for _, _, kind in outcomes if kind)
    examples = [{"question": q, "sql": s, "failure": k} for q, s, k in outcomes if k][:5]
    return NL2SQLReport(name, len(outcomes), passed, round(passed / max(1, len(outcomes)), 4), dict(failures), examples)


def guard_pass_rate(data: Path, questions: Sequence[Question]) -> NL2SQLReport:
    """Gold SQL through the guard: the rows must be exactly the unguarded rows."""
    db = data / "restaurants.sqlite"
    rules = sqlite_allowlist(db)
    outcomes = []
    for q in questions:
        try:
            kind = "" if _run_guarded(db, q.sql, rules) == _gold_rows(db, q.sql) else "different_rows"
        except SQLRejected as err:
            kind = f"rejected: {err.reason}"
        except SQLExecutionError:
            kind = "execution_error"
        outcomes.append((q.question, q.sql, kind))
    return _report("gold SQL through the guard", outcomes)


def schema_text(db: Path) -> str:
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return "\n".join(r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"))
    finally:
        conn.close()


async def execution_accuracy(data: Path, questions: Sequence[Question], llm: BaseChatModel,
                             timeout_s: float = 20.0) -> NL2SQLReport:
    """The LLM's SQL, guarded and run, against the gold rows."""
    db = data / "restaurants.sqlite"
    rules = sqlite_allowlist(db)
    system = SystemMessage(PROMPT.format(schema=schema_text(db)))
    outcomes = []
    for q in questions:
        sql = ""
        try:
            sql = (await decide(llm, SQLAnswer, [system, HumanMessage(q.question)], timeout_s)).sql
            kind = "" if _run_guarded(db, sql, rules) == _gold_rows(db, q.sql) else "wrong_rows"
        except LLMFailed as failure:
            kind = failure.kind
        except SQLRejected:
            kind = "rejected_by_guard"
        except SQLExecutionError:
            kind = "execution_error"
        outcomes.append((q.question, sql, kind))
    return _report("LLM SQL, execution accuracy", outcomes)
