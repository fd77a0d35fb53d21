"""The query graph's state: what every node reads and writes, one documented field at a time.

Fields hold plain dicts and lists (TypedDicts, not classes) so checkpoints, `langgraph dev` and the
JSON API serialise them without custom types. Each field's description is part of the graph's JSON
schema (what Studio shows); pydantic builds that schema on Python 3.11 only from
`typing_extensions.TypedDict`, and LangGraph takes a reducer from the last annotation, so the
description comes before it. A node returns only what it adds to `degraded` and `timings_ms`:
their reducers merge it in. `route` starts each turn by resetting every per-turn field (the two
reduced ones through `Overwrite`, which bypasses their reducers), which keeps a persisted thread
from leaking one turn's results into the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.graph.message import add_messages
from langgraph.types import Overwrite
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

Route = Literal["chat", "web", "kb"]


def add_flags(current: Iterable[str], new: Iterable[str]) -> list[str]:
    """`degraded`'s reducer: a set in first-raised order, stored as plain strings (`Degraded` values)."""
    return list(dict.fromkeys([*current, *map(str, new)]))


def add_timings(current: Mapping[str, float], new: Mapping[str, float]) -> dict[str, float]:
    """`timings_ms`' reducer: a node that runs again in the corrective loop adds its time up."""
    merged = dict(current)
    for name, ms in new.items():
        merged[name] = round(merged.get(name, 0.0) + ms, 3)
    return merged


class Passage(TypedDict):
    """One retrieved chunk (or web result) as the graph sees it."""

    chunk_id: str
    doc_id: str
    filename: str
    text: str
    score: float  # fused score from the retriever (rank order, not comparable across queries)
    relevance: float | None  # calibrated query-passage relevance; what deterministic grading thresholds
    path_scores: dict[str, float]  # recall path name -> that path's raw score (bm25, dense, graph, image, web)
    title: NotRequired[str]  # the document's title: context for every sentence of the chunk
    location: NotRequired[dict[str, Any]]  # page and boxes of a chunk read from an image or a scan (`Chunk.meta`)


class Citation(TypedDict):
    """A numbered source: `[n]` in the answer is `citations[n-1]`."""

    doc_id: str
    filename: str
    chunk_id: str
    quote: str  # the sentences of the chunk the answer relies on, verbatim
    page: NotRequired[int]  # the page the chunk starts on (paged files)
    regions: NotRequired[list[dict[str, Any]]]  # {"page", "box": [x0, y0, x1, y1] as fractions of the page}


class InputState(TypedDict, total=False):
    """What a caller sends: the new user message and where to look."""

    messages: Annotated[list[AnyMessage], Field(description=(
        "The dialogue so far; the last message is the user's new question. Answers are appended as AI "
        "messages, so a persisted thread carries its own history for follow-up rewriting."
    )), add_messages]
    tenant: Annotated[str, Field(description="Tenant every store call is scoped to.")]
    readers: Annotated[list[str] | None, Field(description=(
        "The caller's access-list entries (`*`, `user:<id>`, `group:<name>`); only documents whose access "
        "list shares one are searched. Unset: every document of the tenant."
    ))]
    kb: Annotated[str, Field(description="Knowledge base the question is asked against.")]


class State(InputState, total=False):
    """Everything the graph knows during one turn (and, through the checkpointer, between turns)."""

    route: Annotated[Route, Field(description=(
        "Where `route` sent the question: small talk, the web, or the knowledge base."
    ))]
    rewritten_query: Annotated[str, Field(description=(
        "The self-contained query retrieval uses (follow-ups resolved against the history)."
    ))]
    topic: Annotated[str, Field(description=(
        "The salient entity of the conversation (e.g. 苹果公司) that pronouns and ellipsis refer to; carried "
        "across turns, including small talk in between."
    ))]
    sql: Annotated[str | None, Field(description=(
        "The metadata SQL that narrowed the corpus, or None when no narrowing applied."
    ))]
    allowed_doc_ids: Annotated[list[str] | None, Field(description=(
        "Document allow-list from narrowing; None = the whole knowledge base, [] = nothing matched."
    ))]
    narrow_reason: Annotated[str, Field(description=(
        "Why narrowing did (or did not) restrict the corpus; shown in the `filter` stream event."
    ))]
    listed_documents: Annotated[int, Field(description=(
        "How many documents a metadata question's SQL listed (0 when its rows are not a listing)."
    ))]
    passages: Annotated[list[Passage], Field(description="Retrieved candidates, best first, with per-path scores.")]
    relevance_threshold: Annotated[float | None, Field(description=(
        "The knowledge base's calibrated threshold for the scale of `passages`' relevance (its reranker's); "
        "None = the graph's cosine default (`Thresholds`)."
    ))]
    kept: Annotated[list[Passage], Field(description="Passages that survived grading; the answer may only use these.")]
    citations: Annotated[list[Citation], Field(description="Sources of the answer, numbered as in the answer text.")]
    answer: Annotated[str, Field(description=(
        "The text shown to the user (an answer, a chat reply, or the refusal message)."
    ))]
    refused: Annotated[bool, Field(description=(
        "True when the graph declined to answer; `answer` then explains and invents nothing."
    ))]
    refusal_reason: Annotated[str, Field(description=(
        "Why it refused, in the question's language (empty unless `refused`)."
    ))]
    # a Sequence: nodes return their `Degraded` members, which the checkpoint keeps as the plain strings
    degraded: Annotated[Sequence[str], Field(description=(
        "What fell back this turn, each flag once (`sieve.degraded.Degraded` values), e.g. `llm_timeout`, "
        "`dense_timeout`, `web_error`."
    )), add_flags]
    timings_ms: Annotated[dict[str, float], Field(description=(
        "Wall time per node this turn (a node that runs twice in the corrective loop adds up)."
    )), add_timings]
    attempt: Annotated[int, Field(description=(
        "Corrective attempts used this turn: 0 on the first retrieval, at most `max_corrective`."
    ))]
    # grading's reading of the kept passages (`grading.KeptReadings`), so the extractive answer does not
    # read them again: within the run only, never checkpointed, not part of the schema
    kept_readings: Annotated[SkipJsonSchema[Any], UntrackedValue(object)]


def fresh_turn(degraded: Iterable[str] = ()) -> State:
    """Per-turn fields at the start of a turn, with the turn's first flags; `topic` and `messages`
    carry over on purpose."""
    return State(
        rewritten_query="",
        sql=None,
        allowed_doc_ids=None,
        narrow_reason="",
        listed_documents=0,
        passages=[],
        relevance_threshold=None,
        kept=[],
        citations=[],
        answer="",
        refused=False,
        refusal_reason="",
        degraded=Overwrite(add_flags([], degraded)),  # type: ignore[typeddict-item]
        timings_ms=Overwrite({}),  # type: ignore[typeddict-item]
        attempt=0,
    )
