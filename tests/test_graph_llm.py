"""LLM mode control flow with scripted chat models: decisions, streaming, and the fallbacks."""

from __future__ import annotations

from graph_support import MemoryRetriever, embedder, sample_context, sample_docs
from langchain_core.messages import AIMessage
from scripted_llm import ScriptedChatModel, Slow, decision

from sieve.graphs.agentic_rag.runner import ask, stream_answer
from sieve.settings import Settings


async def collect(question, **kwargs):
    events = [e async for e in stream_answer(question, kb="samples", **kwargs)]
    tokens = [e.data["text"] for e in events if e.type == "token"]
    return events[-1].data, tokens


async def test_llm_decides_route_rewrite_and_grade_and_streams_only_the_answer(tmp_path):
    llm = ScriptedChatModel(script=[
        decision("RouteDecision", route="kb", reason="a question about a company"),
        decision("GradeDecision", relevant=[1]),
        AIMessage("苹果公司 设计和销售 消费电子产品。[1]"),
        decision("RouteDecision", route="kb", reason="follow-up"),
        decision("RewriteDecision", query="苹果公司的总部在哪里"),
        decision("GradeDecision", relevant=[1]),
        AIMessage("苹果公司的总部 位于 库比蒂诺。[1]"),
    ])
    ctx = sample_context(llm=llm)
    first, first_tokens = await collect("苹果公司是做什么的", thread_id="t", context=ctx, settings=Settings(home=tmp_path))
    assert first["route"] == "kb" and not first["refused"] and first["degraded"] == []
    assert len(first_tokens) > 1 and "".join(first_tokens) == first["answer"] == "苹果公司 设计和销售 消费电子产品。[1]"
    assert len(first["citations"]) == 1

    second, second_tokens = await collect("它的总部在哪里", thread_id="t", context=ctx, settings=Settings(home=tmp_path))
    assert second["rewritten_query"] == "苹果公司的总部在哪里"
    assert "".join(second_tokens) == second["answer"] and "库比蒂诺" in second["answer"]
    # decisions never reach the user's token stream
    assert not any("Decision" in t or "relevant" in t for t in first_tokens + second_tokens)
    # the rewrite prompt carried the thread's history
    assert "苹果公司是做什么的" in llm.prompts[4][-1].content
    assert llm.script == []


async def test_llm_grade_that_keeps_nothing_retries_once_then_refuses():
    llm = ScriptedChatModel(script=[
        decision("RouteDecision", route="kb", reason="kb"),
        decision("GradeDecision", relevant=[]),
        decision("RewriteDecision", query="苹果 创始人"),
        decision("GradeDecision", relevant=[]),
    ])
    retriever = MemoryRetriever(embedder(), sample_docs())
    result = await ask("苹果公司的创始人是谁", kb="samples", context=sample_context(llm=llm, retriever=retriever))
    assert result.refused and "不包含答案" in result.refusal_reason
    assert [query for query, _ in retriever.calls] == ["苹果公司的创始人是谁", "苹果 创始人"]


async def test_llm_chat_route_streams_the_reply():
    llm = ScriptedChatModel(script=[
        decision("RouteDecision", route="chat", reason="small talk"),
        AIMessage("I'm doing well, thanks for asking!"),
    ])
    result, tokens = await collect("How is your day going?", context=sample_context(llm=llm))
    assert result["route"] == "chat" and result["answer"] == "I'm doing well, thanks for asking!"
    assert len(tokens) > 1


async def test_llm_error_falls_back_to_deterministic_mode_for_the_rest_of_the_turn():
    llm = ScriptedChatModel(script=[RuntimeError("model crashed")])
    result = await ask("苹果公司是做什么的", kb="samples", context=sample_context(llm=llm))
    assert result.degraded == ["llm_error"]
    assert not result.refused and result.citations[0]["filename"] == "apple-china.md"
    assert len(llm.prompts) == 1  # no further calls to a model that just failed


async def test_llm_timeout_falls_back_and_says_so():
    llm = ScriptedChatModel(script=[Slow(5, decision("RouteDecision", route="kb", reason="-"))])
    result = await ask("What does Apple Inc. do?", kb="samples", context=sample_context(llm=llm, llm_timeout_s=0.2))
    assert result.degraded == ["llm_timeout"]
    assert not result.refused and "[1]" in result.answer
