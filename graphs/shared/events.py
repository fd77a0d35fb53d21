"""The events a graph's run streams to clients (SSE, the OpenAI stream, MCP progress), shared by every graph."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.types import Overwrite

EventType = Literal["route", "rewrite", "filter", "sources", "token", "degraded", "refusal", "done",
                    "plan", "step", "stop"]  # the last three: deep research (graphs/deep_research/runner.py)


@dataclass(frozen=True)
class StreamEvent:
    """One event of a graph's stream (`stream_answer`, deep research's), shaped for SSE
    (`event: type`, `data: json(data)`).

    route {route} · rewrite {rewritten_query} · filter {sql, doc_ids, reason} · sources {sources} ·
    token {text} · degraded {degraded: new flags} · refusal {reason} · done {AskResult fields}
    """

    type: EventType
    data: dict[str, Any]


# a sentence ends at its punctuation, with the citation markers and spaces that follow it
_SENTENCE = re.compile(r".+?(?:[。！？!?；;]+|[.](?=\s|$)|\n+|$)(?:\[\d+\])*\s*", re.S)


def sentence_pieces(text: str) -> list[str]:
    """`text` cut after each sentence; the pieces join back to exactly `text`."""
    return _SENTENCE.findall(text) if text else []


def degraded_events(update: Mapping[str, Any], reported: list[str]) -> list[StreamEvent]:
    """A `degraded` event with the update's flags not `reported` yet (then added to it)."""
    flags = update.get("degraded", [])
    if isinstance(flags, Overwrite):  # the turn's first node resets the flags and sets its own
        flags = flags.value
    new = [str(flag) for flag in flags if flag not in reported]
    reported.extend(new)
    return [StreamEvent("degraded", {"degraded": new})] if new else []
