"""The guard on honest SQL: the restaurants gold queries, guarded, must return what they return unguarded.

    .venv/bin/python bench/bench_nl2sql_guard.py [--data DIR] [--max-rows N]

The allow-list is the database's own schema (every table and column) with no tenant predicate, so the
only changes the guard may make are its rewrites (tables wrapped in subqueries, comments dropped,
SQLite's double-quoted strings made literals, a LIMIT). Rows are compared as multisets. `--max-rows`
is the guard's LIMIT; it defaults above the largest gold result so that the LIMIT does not truncate.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import Counter
from pathlib import Path

from sieve.nl2sql.executor import SQLExecutionError, execute_sqlite
from sieve.nl2sql.guard import DEFAULT_MAX_ROWS, SQLRejected, guard
from sieve.nl2sql.schema import sqlite_allowlist

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nl2sql-restaurants"


def check_gold(data: Path, max_rows: int) -> tuple[int, list[tuple[str, str]], int]:
    """(queries, failures as (sql, reason), queries the default LIMIT would truncate)."""
    db = data / "restaurants.sqlite"
    rules = sqlite_allowlist(db)
    queries = [json.loads(line)["sql"] for line in (data / "questions.jsonl").read_text().splitlines() if line.strip()]
    direct = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    failures: list[tuple[str, str]] = []
    truncated = 0
    for sql in queries:
        expected = Counter(direct.execute(sql).fetchall())
        truncated += sum(expected.values()) > DEFAULT_MAX_ROWS
        try:
            guarded = guard(sql, rules, tenant=None, dialect="sqlite", max_rows=max_rows)
            got = Counter(execute_sqlite(db, guarded, max_rows=max_rows, timeout_s=10).rows)
        except (SQLRejected, SQLExecutionError) as err:
            failures.append((sql, err.reason))
            continue
        if got != expected:
            failures.append((sql, f"different rows: {sum(got.values())} guarded vs {sum(expected.values())} direct"))
    direct.close()
    return len(queries), failures, truncated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--max-rows", type=int, default=10_000)
    args = parser.parse_args()
    total, failures, truncated = check_gold(args.data, args.max_rows)
    passed = total - len(failures)
    print(f"restaurants gold queries: {passed}/{total} pass the guard with identical rows ({100 * passed / total:.1f}%)")
    print(f"LIMIT {args.max_rows}; {truncated} of them return more than the default LIMIT {DEFAULT_MAX_ROWS} rows")
    for sql, reason in failures:
        print(f"FAIL {reason}\n     {sql}")


if __name__ == "__main__":
    main()
