"""The knowledge-base operations of one caller, in the server's process: the tools' backend."""

from __future__ import annotations

import asyncio
from typing import Any

from sieve.api.conversation import ask_once, check_kb, check_question, research_once
from sieve.api.schemas import HitPublic, KnowledgeBasePublic
from sieve.api.state import AppState
from sieve.stores.acl import Principal
from sieve.stores.catalog import list_kbs, readable_counts
from sieve.stores.types import SearchFilter
from sieve.tools.graph_tool import AskArgs, ListArgs, ResearchArgs, SearchArgs


class TenantKnowledge:
    """`KnowledgeTools` for one caller: tenant and readers come from its key or token, never from arguments."""

    def __init__(self, state: AppState, caller: Principal):
        self.state = state
        self.caller = caller
        self.tenant = caller.tenant

    async def knowledge_bases(self) -> list[KnowledgeBasePublic]:
        def summaries() -> list[KnowledgeBasePublic]:
            with self.state.stack.sessions() as session:
                counts = readable_counts(session, self.tenant, self.caller.readers)
                return [KnowledgeBasePublic.of(kb, *counts.get(kb.id, (0, 0))) for kb in list_kbs(session, self.tenant)]

        return await asyncio.to_thread(summaries)

    async def list_knowledge_bases(self, args: ListArgs) -> dict[str, Any]:
        return {"knowledge_bases": [kb.model_dump(mode="json") for kb in await self.knowledge_bases()]}

    async def search_knowledge_base(self, args: SearchArgs) -> dict[str, Any]:
        query = check_question(args.query, self.state.settings.max_question_chars, "query")
        kb_id = await check_kb(self.state, self.tenant, args.kb)
        result = await self.state.retriever.retrieve(query, SearchFilter(self.tenant, kb_id, readers=self.caller.readers),
                                                     args.k)
        return {"hits": [HitPublic.of(h).model_dump(mode="json") for h in result.hits], "degraded": result.degraded}

    async def ask(self, args: AskArgs) -> dict[str, Any]:
        question = check_question(args.question, self.state.settings.max_question_chars)
        await check_kb(self.state, self.tenant, args.kb)
        return await ask_once(self.state, self.caller, question, args.kb, thread_id=args.thread_id)

    async def research_knowledge_base(self, args: ResearchArgs) -> dict[str, Any]:
        question = check_question(args.question, self.state.settings.max_question_chars)
        await check_kb(self.state, self.tenant, args.kb)
        return await research_once(self.state, self.caller, question, args.kb)
