"""The guard on honest SQL: guarded restaurants gold queries return exactly what they return unguarded."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from sieve.nl2sql.executor import SQLExecutionError, execute_sqlite
from sieve.nl2sql.guard import SQLRejected, guard
from sieve.nl2sql.schema import sqlite_allowlist

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nl2sql-restaurants"
MAX_ROWS = 10_000  # above the largest gold result, so the enforced LIMIT truncates nothing


@pytest.mark.skipif(not (DATA / "restaurants.sqlite").exists(), reason="shared restaurants data not present")
def test_at_least_99_percent_of_gold_queries_pass_the_guard_with_the_same_rows():
    db = DATA / "restaurants.sqlite"
    rules = sqlite_allowlist(db)
    gold = [json.loads(line)["sql"] for line in (DATA / "questions.jsonl").read_text().splitlines() if line.strip()]
    direct = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    outcome: dict[str, bool] = {}
    for sql in dict.fromkeys(gold):  # repeated gold SQL has one outcome
        try:
            guarded = guard(sql, rules, tenant=None, max_rows=MAX_ROWS)
            rows = execute_sqlite(db, guarded, max_rows=MAX_ROWS, timeout_s=10).rows
        except (SQLRejected, SQLExecutionError):
            outcome[sql] = False
            continue
        outcome[sql] = Counter(rows) == Counter(direct.execute(sql).fetchall())
    direct.close()
    passed = sum(outcome[sql] for sql in gold)
    assert passed / len(gold) >= 0.99, [sql for sql, ok in outcome.items() if not ok]
