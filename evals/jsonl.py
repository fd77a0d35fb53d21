"""Reading the JSON Lines files the evaluations take (questions, dialogues, labelled rows, BEIR queries)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sieve.errors import InvalidInput

T = TypeVar("T")


def read_rows(path: Path, make: Callable[[Any], T], what: str) -> list[T]:
    """`make` over each non-empty line's JSON; a line that is not JSON, or not `what`, is `InvalidInput`
    naming the file and the line (the user's data is wrong, not the program)."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(make(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path.name} line {number}: not {what} ({type(exc).__name__}: {exc})") from None
    return rows
