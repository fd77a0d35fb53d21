"""Per-run dependencies of the query graph, injected through LangGraph's runtime context.

Callers pass `context=GraphContext(...)` to `graph.ainvoke/astream`; nodes read it from
`runtime.context`. A run without a retriever in its context (`langgraph dev`, Studio) uses
`default_context()`, built once from settings by `build_default_context()`.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Protocol, TypeVar

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.json_schema import SkipJsonSchema

from sieve.graphs.shared.grading import GradeLimits
from sieve.graphs.shared.state import InputState
from sieve.models.guarded_embedder import GuardedEmbedder, guarded
from sieve.prompts.language import Lang
from sieve.retrievers.types import Retriever
from sieve.settings import Settings, get_settings
from sieve.stores.types import SearchFilter
from sieve.tools.web_search import WebSearch

T = TypeVar("T")
# A live object, not data: LangGraph builds the context's JSON schema (Studio's form) with pydantic,
# which can neither describe nor validate a retriever, so such fields are passed through and hidden.
Injected = Annotated[T, PlainValidator(lambda value: value), SkipJsonSchema()]


class Narrowing(Protocol):
    """What a narrowing function returns (the NL2SQL `NarrowResult` has these fields); read only, so
    frozen results qualify."""

    @property
    def sql(self) -> str | None: ...
    @property
    def rows(self) -> list[tuple[Any, ...]]: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def doc_ids(self) -> frozenset[str] | None:
        """None = no restriction, empty = nothing matches."""
    @property
    def metadata_answer(self) -> bool:
        """The rows themselves answer the question (e.g. "how many reports in 2023")."""
    @property
    def content_query(self) -> str:
        """The question minus the metadata conditions, for retrieval."""
    @property
    def reason(self) -> str: ...


NarrowFn = Callable[[str, str, str, frozenset[str] | None], Awaitable[Narrowing]]
"""`(question, tenant, kb, readers) -> Narrowing`; only documents `readers` may read (None: all) may match."""


@dataclass(frozen=True)
class NoNarrowing:
    sql: str | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    doc_ids: frozenset[str] | None = None
    metadata_answer: bool = False
    content_query: str = ""
    reason: str = "no metadata narrowing configured"


async def no_narrowing(question: str, tenant: str, kb: str, readers: frozenset[str] | None) -> Narrowing:
    return NoNarrowing(content_query=question)


@pydantic_dataclass(frozen=True, config=ConfigDict(use_attribute_docstrings=True, extra="forbid"))
class Thresholds:
    """Calibrated constants of deterministic mode (relevance = e5 query-passage cosine).

    The relevance floors gate grading; the evidence model behind it (graphs/shared/evidence_model.json)
    was trained on the fitting halves of rgb-zh and the English answer-or-refuse set
    (evals/train_evidence.py). A dict (Studio's context form) is validated into this class.
    """

    relevance_zh: float = 0.80
    """Below it a Chinese passage is off topic (also the routing probe's bar)."""
    relevance_en: float = 0.80
    """Below it an English passage is off topic."""
    evidence: float | None = Field(default=None, ge=0, le=1)
    """Probability of stating the answer a passage must reach (evidence model); None = the model's per-language one."""
    exemplar_margin: float = 0.02
    """Routing: a chat/web exemplar must beat the best kb exemplar by this much to leave the KB."""
    top_k: int = Field(default=8, ge=1)
    """Passages retrieved (or web results fetched) per attempt."""
    max_kept: int = Field(default=4, ge=1)
    """Passages grading keeps at most."""
    max_corrective: int = Field(default=1, ge=0)
    """Corrective rewrite-and-retrieve rounds after nothing survives grading."""
    answer_sentences: int = Field(default=3, ge=1)
    """Sentences an extractive answer quotes at most."""

    def relevance(self, lang: Lang) -> float:
        return self.relevance_zh if lang == "zh" else self.relevance_en

    def grade_limits(self, lang: Lang) -> GradeLimits:
        return GradeLimits(self.relevance(lang), self.evidence)


class GraphContext(BaseModel):
    """Everything a run needs besides its state.

    Live objects (retriever, LLM, embedder, narrowing, web search) are injected by code and hidden
    from the JSON schema; the timeouts and `thresholds` are plain data that Studio's context form can
    set. LangGraph builds this class from such a dict, so every data field is validated here.
    """

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    retriever: Injected[Retriever | None] = None
    llm: Injected[BaseChatModel | None] = None  # None = deterministic mode
    # exemplar routing and scoring hits without relevance; a plain `Embedder` gets a breaker of its own
    embedder: Annotated[GuardedEmbedder | None, PlainValidator(guarded), SkipJsonSchema()] = None
    narrow: Injected[NarrowFn] = no_narrowing
    web: Injected[WebSearch | None] = None  # None = the web route says it is not configured
    # the JPEG of the page region a passage was read from (scans, images) for an LLM that reads images;
    # None = the answer prompt carries text only
    page_image: Injected[Callable[[str, str], bytes | None] | None] = None
    llm_timeout_s: float = Field(20.0, gt=0)
    """Per LLM call; past it the node answers deterministically (`llm_timeout`)."""
    web_timeout_s: float = Field(10.0, gt=0)
    """Per web search; past it the web route refuses (`web_error`)."""
    embedder_timeout_s: float = Field(0.25, gt=0)
    """Per query-time embedding in routing and grading; past it the breaker opens (`embedder_timeout`)."""
    thresholds: Thresholds = Field(default_factory=Thresholds)
    """Calibrated constants of deterministic mode."""


# what a caller without its own retriever (Studio) may still set on top of the default context
_DATA_FIELDS = ("llm_timeout_s", "web_timeout_s", "embedder_timeout_s", "thresholds")


async def resolve(context: GraphContext | None) -> GraphContext:
    """The context a node works with: the caller's, or the default with the data fields the caller set."""
    if context is not None and context.retriever is not None:
        return context
    # building the default opens stores and models: blocking work, kept off the event loop
    base = await asyncio.to_thread(default_context)
    if context is None:
        return base
    chosen = {name: getattr(context, name) for name in _DATA_FIELDS if name in context.model_fields_set}
    return base.model_copy(update=chosen)


@lru_cache(maxsize=1)
def default_context() -> GraphContext:
    settings = get_settings()
    if settings.graph_context_factory:
        module, _, name = settings.graph_context_factory.partition(":")
        factory: Callable[[], GraphContext] = getattr(importlib.import_module(module), name)
        return factory()
    return build_default_context(settings)


def build_default_context(settings: Settings) -> GraphContext:
    """The production wiring from settings: one `Stack` over SIEVE_HOME (see graphs/shared/wiring.py)."""
    from sieve.graphs.shared.wiring import build_context
    from sieve.stores.stack import Stack

    return build_context(Stack(settings))


def search_filter(state: InputState, doc_ids: list[str] | None = None) -> SearchFilter:
    """The store filter of this turn: the state's tenant (settings' default when unset), KB and readers."""
    tenant = state.get("tenant") or get_settings().default_tenant
    readers = state.get("readers")
    return SearchFilter(tenant=tenant, kb=state.get("kb", ""), doc_ids=None if doc_ids is None else frozenset(doc_ids),
                        readers=None if readers is None else frozenset(readers))
