"""The production wiring of the query graph: knowledge bases addressed by name over one `Stack`.

The graph's state names a knowledge base the way users do (`kb="handbook"`); the stores filter by
the knowledge base's id. These adapters resolve the name per call, so a knowledge base created or
deleted while the service runs is seen on the next question.
"""

from __future__ import annotations

import asyncio
import dataclasses
from functools import partial

from langchain_core.language_models import BaseChatModel

from sieve.graphs.shared.context import GraphContext
from sieve.ingest.originals import chunk_region_jpeg
from sieve.models.chat import build_chat_model
from sieve.nl2sql.service import NarrowResult, aselect_documents
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.types import RetrievalResult
from sieve.stores.crud import KbId, kb_id
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter
from sieve.tools.web_search import build_web_search


def resolve_kb_id(stack: Stack, tenant: str, kb: str) -> KbId:
    """The id of the tenant's knowledge base called `kb`; `KnowledgeBaseNotFound` otherwise."""
    with stack.sessions() as session:
        return kb_id(session, tenant, kb)


class NamedKnowledgeBaseRetriever:
    """The graph's `Retriever` for filters that carry a knowledge-base name."""

    def __init__(self, stack: Stack, hybrid: HybridRetriever | None = None):
        self.stack = stack
        self.hybrid = hybrid or HybridRetriever(stack)

    async def retrieve(self, query: str, flt: SearchFilter, k: int) -> RetrievalResult:
        kb_id = await asyncio.to_thread(resolve_kb_id, self.stack, flt.tenant, flt.kb)
        return await self.hybrid.retrieve(query, dataclasses.replace(flt, kb=kb_id), k)

    async def profile(self, flt: SearchFilter) -> RetrievalProfile:
        """The named knowledge base's stored profile (deep research reads its budget and step limit)."""
        return await asyncio.to_thread(lambda: self.hybrid.load_profile(resolve_kb_id(self.stack, flt.tenant, flt.kb)))


class NamedKnowledgeBaseNarrowing:
    """The graph's narrowing function: NL2SQL over the metadata DB of the named knowledge base."""

    def __init__(self, stack: Stack, llm: BaseChatModel | None = None):
        self.stack = stack
        self.llm = llm

    async def __call__(self, question: str, tenant: str, kb: str, readers: frozenset[str] | None) -> NarrowResult:
        kb_id = await asyncio.to_thread(resolve_kb_id, self.stack, tenant, kb)
        return await aselect_documents(question, tenant, kb_id, self.stack.engine, llm=self.llm, readers=readers)


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
