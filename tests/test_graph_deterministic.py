"""The query graph in deterministic mode (no LLM) over the sample KB, as a user of `sieve ask` sees it."""

from __future__ import annotations

import re

import pytest
from graph_support import MemoryRetriever, embedder, sample_context, sample_docs
from postgres import on_sqlite_and_postgres

from sieve.graphs.agentic_rag.runner import ask, stream_answer
from sieve.graphs.shared.context import GraphContext, NoNarrowing
from sieve.settings import Settings
from sieve.tools.web_search import WebResult


def quoted_from_kb(quote: str) -> bool:
    return any(quote in text or quote in " ".join(text.split()) or quote in text.replace("\n", "")
               for text in sample_docs().values())


async def test_greeting_is_small_talk_without_retrieval():
    ctx = sample_context(retriever=MemoryRetriever(embedder(), sample_docs()))
    zh = await ask("你好！", kb="samples", context=ctx)
    en = await ask("Hi there!", kb="samples", context=ctx)
    for result in (zh, en):
        assert result.route == "chat"
        assert result.answer and not result.refused and result.citations == []
    assert "你好" in zh.answer and "Hello" in en.answer
    assert ctx.retriever.calls == []


@pytest.mark.parametrize(
    ("first", "cited", "follow_up", "entity", "fact", "off_point"),
    [
        ("苹果公司是做什么的", "apple-china.md", "它的总部在哪里", "苹果公司", "库比蒂诺", "中国大陆"),
        ("What does Apple Inc. do?", "apple-inc.md", "Where is its headquarters?", "Apple", "Cupertino", "designs"),
    ],
)
@on_sqlite_and_postgres
async def test_answer_with_citation_then_follow_up_in_the_same_thread(
    tmp_path, database_env, first, cited, follow_up, entity, fact, off_point
):
    ctx = sample_context()
    answered = await ask(first, kb="samples", thread_id="t", context=ctx, settings=Settings(home=tmp_path))
    assert answered.route == "kb" and not answered.refused
    assert "[1]" in answered.answer
    assert answered.citations[0]["filename"] == cited
    assert all(quoted_from_kb(c["quote"]) for c in answered.citations)
    assert len(answered.citations) == len(set(re.findall(r"\[(\d+)\]", answered.answer)))

    # a second `ask` opens the thread store afresh: the history comes from threads.sqlite (or AsyncPostgresSaver)
    followed = await ask(follow_up, kb="samples", thread_id="t", context=ctx, settings=Settings(home=tmp_path))
    assert entity in followed.rewritten_query
    assert not followed.refused and fact in followed.answer
    assert off_point not in followed.answer  # "where" is answered by the sentence naming the place
    assert (tmp_path / "threads.sqlite").exists() == (database_env is None)  # PostgreSQL keeps them itself

    # the same follow-up in a new thread has nothing to refer to
    alone = await ask(follow_up, kb="samples", thread_id="other", context=ctx, settings=Settings(home=tmp_path))
    assert entity not in alone.rewritten_query


@pytest.mark.parametrize("question", ["火星上的第一座城市叫什么名字", "Who won the 1998 chess olympiad?"])
async def test_unanswerable_question_is_refused_with_a_reason_and_no_invented_text(question):
    result = await ask(question, kb="samples", context=sample_context())
    assert result.route == "kb"
    assert result.refused and result.refusal_reason
    assert result.citations == []
    assert result.refusal_reason in result.answer
    # nothing from the KB leaks into the refusal
    assert not any(sentence in result.answer
                   for text in sample_docs().values() for sentence in text.split("。") if len(sentence) > 8)


async def test_corrective_loop_retries_once_then_refuses():
    ctx = sample_context(retriever=MemoryRetriever(embedder(), {}))
    result = await ask("苹果公司的创始人是谁", kb="samples", context=ctx)
    assert result.refused
    assert len(ctx.retriever.calls) == 2  # the first query and one looser retry, no more
    assert ctx.retriever.calls[0][0] != ctx.retriever.calls[1][0]


async def test_web_route_without_web_search_says_so_and_offers_the_kb():
    zh = await ask("今天有什么新闻", kb="samples", context=sample_context())
    en = await ask("What's the latest news today?", kb="samples", context=sample_context())
    assert zh.route == en.route == "web"
    assert zh.refused and "没有配置网络搜索" in zh.answer and "samples" in zh.answer
    assert en.refused and "no web search is configured" in en.answer and "knowledge base 'samples'" in en.answer


class FakeWeb:
    async def search(self, query: str, k: int) -> list[WebResult]:
        return [WebResult("Weather in Paris", "https://weather.example/paris", "Paris weather today: sunny, 21 °C.")]


async def test_web_route_answers_from_search_results_with_url_citations():
    result = await ask("What is the weather in Paris today?", kb="samples", context=sample_context(web=FakeWeb()))
    assert result.route == "web" and not result.refused
    assert "sunny" in result.answer and result.citations[0]["doc_id"] == "https://weather.example/paris"


async def test_narrowing_restricts_retrieval_to_the_allowed_documents():
    async def only_huawei(question, tenant, kb, readers):
        return NoNarrowing(sql="SELECT id FROM documents WHERE title LIKE '%华为%'", doc_ids=frozenset({"huawei.md"}),
                           content_query=question, reason="title mentions 华为")

    ctx = sample_context(narrow=only_huawei)
    result = await ask("总部在哪里", kb="samples", context=ctx)
    assert {c["doc_id"] for c in result.citations} == {"huawei.md"}
    assert ctx.retriever.calls[-1][1].doc_ids == frozenset({"huawei.md"})


async def test_narrowing_that_matches_nothing_refuses_with_its_reason():
    async def nothing(question, tenant, kb, readers):
        return NoNarrowing(sql="SELECT id FROM documents WHERE year = 1900", doc_ids=frozenset(), content_query=question,
                           reason="no document from 1900")

    result = await ask("1900年的报告讲了什么", kb="samples", context=sample_context(narrow=nothing))
    assert result.refused and "no document from 1900" in result.refusal_reason


async def test_metadata_rows_answer_the_question_directly():
    async def count(question, tenant, kb, readers):
        return NoNarrowing(sql="SELECT count(*) AS documents FROM documents", rows=[(8,)], columns=["documents"],
                           metadata_answer=True, content_query=question, reason="a count over metadata")

    result = await ask("知识库里有多少篇文档", kb="samples", context=sample_context(narrow=count))
    assert not result.refused and "documents: 8" in result.answer
    assert result.citations[0]["doc_id"] == "metadata"


async def test_stream_reports_each_stage_then_the_answer():
    events = [e async for e in stream_answer("苹果公司是做什么的", kb="samples", context=sample_context())]
    types = [e.type for e in events]
    assert types[:3] == ["route", "rewrite", "filter"]
    assert types.index("sources") < types.index("token") < types.index("done") == len(types) - 1
    tokens = "".join(e.data["text"] for e in events if e.type == "token")
    assert tokens == events[-1].data["answer"]
    assert set(events[-1].data) == {
        "route", "rewritten_query", "answer", "refused", "refusal_reason", "citations", "degraded", "timings_ms"
    }
    assert {"route", "rewrite", "narrow", "retrieve", "grade", "answer"} <= set(events[-1].data["timings_ms"])


async def test_a_failing_retriever_is_reported_not_raised():
    class Down:
        async def retrieve(self, query, flt, k):
            raise ConnectionError("index offline")

    result = await ask("苹果公司是做什么的", kb="samples", context=GraphContext(retriever=Down()))
    assert result.refused and "retrieval_error" in result.degraded
