"""The production wiring of the query graph: knowledge bases addressed by name over one `Stack`.

The graph's state names a knowledge base the way users do (`kb="handbook"`); the stores filter by
the knowledge base's id. These adapters resolve the name (with the knowledge base's retrieval profile,
one query) per call, so a knowledge base created, deleted or re-profiled while the service runs is seen
on the next question; a turn the server has already looked the knowledge base up for (`for_turn`)
uses that lookup throughout, instead of one per node.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from functools import partial

from langchain_core.language_models import BaseChatModel
from sqlalchemy import select

from sieve.graphs.shared.context import GraphContext
from sieve.ingest.originals import chunk_region_jpeg
from sieve.models.chat import build_chat_model
from sieve.nl2sql.service import NarrowResult, aselect_documents
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.types import RetrievalResult
from sieve.stores.catalog import KnowledgeBaseNotFound
from sieve.stores.crud import KbId, kb_id
from sieve.stores.metadata import KnowledgeBase
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter
from sieve.tools.web_search import build_web_search


def resolve_kb_id(stack: Stack, tenant: str, kb: str) -> KbId:
    """The id of the tenant's knowledge base called `kb`; `KnowledgeBaseNotFound` otherwise."""
    with stack.sessions() as session:
        return kb_id(session, tenant, kb)


@dataclass(frozen=True)
class KnownKnowledgeBase:
    """A knowledge base as one lookup found it: the name users give, the id the stores filter by, and
    its stored retrieval profile."""

    tenant: str
    name: str
    id: KbId
    profile: RetrievalProfile


def find_knowledge_base(stack: Stack, tenant: str, kb: str) -> KnownKnowledgeBase:
    """The tenant's knowledge base called `kb` with its profile (one query); `KnowledgeBaseNotFound` otherwise."""
    with stack.sessions() as session:
        row = session.execute(select(KnowledgeBase.id, KnowledgeBase.profile)
                              .where(KnowledgeBase.tenant_id == tenant, KnowledgeBase.name == kb)).one_or_none()
    if row is None:
        raise KnowledgeBaseNotFound(tenant, kb)
    return KnownKnowledgeBase(tenant, kb, KbId(row.id), RetrievalProfile.from_stored(row.profile))


class _ByName:
    """Resolves the knowledge base a call names: the turn's own lookup when it is that one, else a query."""

    def __init__(self, stack: Stack, known: KnownKnowledgeBase | None):
        self.stack = stack
        self.known = known

    async def _find(self, tenant: str, kb: str) -> KnownKnowledgeBase:
        if self.known is not None and (self.known.tenant, self.known.name) == (tenant, kb):
            return self.known
        return await asyncio.to_thread(find_knowledge_base, self.stack, tenant, kb)


class NamedKnowledgeBaseRetriever(_ByName):
    """The graph's `Retriever` for filters that carry a knowledge-base name."""

    def __init__(self, stack: Stack, hybrid: HybridRetriever | None = None, known: KnownKnowledgeBase | None = None):
        super().__init__(stack, known)
        self.hybrid = hybrid or HybridRetriever(stack)

    def bound(self, known: KnownKnowledgeBase) -> NamedKnowledgeBaseRetriever:
        return NamedKnowledgeBaseRetriever(self.stack, self.hybrid, known)

    async def retrieve(self, query: str, flt: SearchFilter, k: int) -> RetrievalResult:
        kb = await self._find(flt.tenant, flt.kb)
        return await self.hybrid.retrieve(query, dataclasses.replace(flt, kb=kb.id), k, profile=kb.profile)

    async def profile(self, flt: SearchFilter) -> RetrievalProfile:
        """The named knowledge base's stored profile (deep research reads its budget and step limit)."""
        return (await self._find(flt.tenant, flt.kb)).profile


class NamedKnowledgeBaseNarrowing(_ByName):
    """The graph's narrowing function: NL2SQL over the metadata DB of the named knowledge base."""

    def __init__(self, stack: Stack, llm: BaseChatModel | None = None, known: KnownKnowledgeBase | None = None):
        super().__init__(stack, known)
        self.llm = llm

    def bound(self, known: KnownKnowledgeBase) -> NamedKnowledgeBaseNarrowing:
        return NamedKnowledgeBaseNarrowing(self.stack, self.llm, known)

    async def __call__(self, question: str, tenant: str, kb: str, readers: frozenset[str] | None) -> NarrowResult:
        found = await self._find(tenant, kb)
        return await aselect_documents(question, tenant, found.id, self.stack.engine, llm=self.llm, readers=readers)


def for_turn(context: GraphContext, kb: KnownKnowledgeBase) -> GraphContext:
    """`context` for one turn on `kb`, looked up when the turn began: its nodes search and narrow with
    that lookup instead of resolving the name (and reading the profile) again in each node."""
    update: dict[str, object] = {}
    if isinstance(context.retriever, NamedKnowledgeBaseRetriever):
        update["retriever"] = context.retriever.bound(kb)
    if isinstance(context.narrow, NamedKnowledgeBaseNarrowing):
        update["narrow"] = context.narrow.bound(kb)
    return context.model_copy(update=update) if update else context


def build_context(stack: Stack) -> GraphContext:
    """The graph's context over `stack`: hybrid retrieval, NL2SQL narrowing, configured LLM and web."""
    settings = stack.settings
    llm = build_chat_model(settings)
    retriever = NamedKnowledgeBaseRetriever(stack)
    return GraphContext(
        retriever=retriever,
        llm=llm,
        # retrieval's guarded embedder: a timeout in any node opens the breaker for all of them
        embedder=retriever.hybrid.embedder,
        narrow=NamedKnowledgeBaseNarrowing(stack, llm),
        web=build_web_search(settings),
        page_image=partial(chunk_region_jpeg, stack) if llm is not None and settings.llm_vision else None,
        llm_timeout_s=settings.llm_timeout_s,
        embedder_timeout_s=settings.embedder_timeout_ms / 1000,
    )
