"""The deep-research graph's state: the plan, every retrieval step, why it stopped, and the report.

Like the query graph's state (`graphs/shared/state.py`) it holds plain dicts and lists, so checkpoints,
`langgraph dev` and the JSON API serialise it; `degraded` and `timings_ms` use the same reducers,
and `steps` is appended to round by round.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from sieve.graphs.shared.state import Citation, InputState, Passage, add_flags, add_timings


class StopReason(StrEnum):
    """Why the research stopped retrieving; clients read the strings."""

    ANSWERED = "answered"
    """Every sub-question has passages that answer it."""
    BUDGET_SPENT = "budget_spent"
    """The profile's `research_budget_ms` ran out; steps still running were abandoned."""
    NO_PROGRESS = "no_progress"
    """Something is still missing and no query is left to try (every follow-up was tried)."""
    STEP_LIMIT = "step_limit"
    """The profile's `max_steps` rounds ran with something still missing."""


class SubQuestion(TypedDict):
    """One part of the plan; a hop's `question` names its bridge entity once one is found."""

    id: int
    question: str
    kind: Literal["part", "bridge", "hop"]  # hop: asks about what its `parent` (a bridge) finds
    parent: NotRequired[int]
    template: NotRequired[str]  # a hop's question with `{entity}` for the bridge entity
    entity_type: NotRequired[str]  # a bridge's and its hop's: the kind of entity the bridge names
    subject: NotRequired[str]  # a bridge's: what it asks about (张伟 in 张伟在哪里工作？)


class Step(TypedDict):
    """One sub-query of one round: what it searched for and what grading kept."""

    step: int  # the round, from 1
    sub_question: int
    query: str
    sql: str | None  # the metadata SQL that narrowed this query's corpus, if any
    kept: list[Passage]
    timed_out: bool  # still running when the budget ran out (abandoned)
    entity: NotRequired[str]  # the bridge entity a hop's query asked about


class Section(TypedDict):
    """The report's part for one sub-question: claims cited [n] into the report's citations, or refused."""

    sub_question: int
    question: str
    text: str
    refused: bool


class ResearchState(InputState, total=False):
    plan: Annotated[list[SubQuestion], Field(description=(
        "The sub-questions, in report order; hops are added (and named) as their bridge entities are found."
    ))]
    pending: Annotated[list[dict[str, Any]], Field(description=(
        "The queries of the next round: {sub_question, query}."
    ))]
    tried: Annotated[list[str], Field(description="Every query run so far (a follow-up never repeats one).")]
    steps: Annotated[list[Step], Field(description="Every sub-query of every round, in order."), operator.add]
    rounds: Annotated[int, Field(description="Retrieval rounds run so far.")]
    max_steps: Annotated[int, Field(description="The profile's `max_steps`.")]
    deadline: Annotated[float, Field(description="Wall-clock time (epoch seconds) the research must end by.")]
    stop_reason: Annotated[str, Field(description="Why retrieval stopped (`StopReason` values); empty while running.")]
    sections: Annotated[list[Section], Field(description="The report, one section per sub-question.")]
    citations: Annotated[list[Citation], Field(description="Sources of the report, numbered as in its text.")]
    answer: Annotated[str, Field(description="The report's text.")]
    refused_parts: Annotated[list[str], Field(description="Sub-questions nothing in the knowledge base supports.")]
    refused: Annotated[bool, Field(description="True when no part of the question could be answered.")]
    degraded: Annotated[Sequence[str], Field(description="What fell back during the research, each flag once."),
                        add_flags]
    timings_ms: Annotated[dict[str, float], Field(description="Wall time per node (rounds add up)."), add_timings]
