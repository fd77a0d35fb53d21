"""The guard on honest SQL: the restaurants gold queries, guarded, must return what they return unguarded.

    .venv/bin/python bench/bench_nl2sql_guard.py [--data DIR]

The allow-list is the database's own schema (every table and column) with no tenant predicate, so the
only changes the guard may make are its rewrites (tables wrapped in subqueries, comments dropped,
SQLite's double-quoted strings made literals, a LIMIT above the largest gold result). Rows are compared
as multisets. The check is `sieve.evals.nl2sql.guard_pass_rate`, also `sieve eval nl2sql` without an LLM.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sieve.evals.nl2sql import guard_pass_rate, load_questions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nl2sql-restaurants"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    report = guard_pass_rate(args.data, load_questions(args.data))
    print(f"restaurants gold queries: {report.passed}/{report.questions} pass the guard with identical rows "
          f"({100 * report.accuracy:.1f}%)")
    for kind, count in report.failures.items():
        print(f"FAIL {count} x {kind}")
    for example in report.examples:
        print(f"     {example['sql']}")


if __name__ == "__main__":
    main()
