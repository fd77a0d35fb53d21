"""The knowledge-base operations of one caller, in the server's process: the tools' backend."""

from __future__ import annotations

import asyncio
from datetime import timezone
from typing import Any

from sieve.api.conversation import ask_once, check_kb, check_question, research_once
from sieve.api.state import AppState
from sieve.retrievers.types import Hit
from sieve.stores.acl import Principal
from sieve.stores.catalog import list_kbs, readable_counts
from sieve.stores.metadata import KnowledgeBase
from sieve.stores.types import SearchFilter
from sieve.tools.graph_tool import AskArgs, ListArgs, ResearchArgs, SearchArgs


def hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "doc_id": hit.doc_id,
        "chunk_id": hit.chunk_id,
        "filename": hit.filename,
        "title": hit.title,
        "text": hit.text,
        "score": hit.score,
        "relevance": hit.relevance,
        "ranks": hit.ranks,
        # an image's or a scan's chunk: its page and regions (the page image: .../chunks/{chunk_id}/image)
        "location": hit.location,
    }


def kb_json(kb: KnowledgeBase, documents: int, chunks: int = 0) -> dict[str, Any]:
    return {"name": kb.name, "description": kb.description, "documents": documents, "chunks": chunks,
            "created_at": kb.created_at.replace(tzinfo=kb.created_at.tzinfo or timezone.utc).isoformat()}


class TenantKnowledge:
    """`KnowledgeTools` for one caller: tenant and readers come from its key or token, never from arguments."""

    def __init__(self, state: AppState, caller: Principal):
        self.state = state
        self.caller = caller
        self.tenant = caller.tenant

    async def knowledge_bases(self) -> list[dict[str, Any]]:
        def summaries() -> list[dict[str, Any]]:
            with self.state.stack.sessions() as session:
                counts = readable_counts(session, self.tenant, self.caller.readers)
                return [kb_json(kb, *counts.get(kb.id, (0, 0))) for kb in list_kbs(session, self.tenant)]

        return await asyncio.to_thread(summaries)

    async def list_knowledge_bases(self, args: ListArgs) -> dict[str, Any]:
        return {"knowledge_bases": await self.knowledge_bases()}

    async def search_knowledge_base(self, args: SearchArgs) -> dict[str, Any]:
        query = check_question(args.query, self.state.settings.max_question_chars, "query")
        kb_id = await check_kb(self.state, self.tenant, args.kb)
        result = await self.state.retriever.retrieve(query, SearchFilter(self.tenant, kb_id, readers=self.caller.readers),
                                                     args.k)
        return {"hits": [hit_json(h) for h in result.hits], "degraded": result.degraded}

    async def ask(self, args: AskArgs) -> dict[str, Any]:
        question = check_question(args.question, self.state.settings.max_question_chars)
        await check_kb(self.state, self.tenant, args.kb)
        return await ask_once(self.state, self.caller, question, args.kb, thread_id=args.thread_id)

    async def research_knowledge_base(self, args: ResearchArgs) -> dict[str, Any]:
        question = check_question(args.question, self.state.settings.max_question_chars)
        await check_kb(self.state, self.tenant, args.kb)
        return await research_once(self.state, self.caller, question, args.kb)
