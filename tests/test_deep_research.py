"""Deep research in deterministic mode, as a user of `sieve research` sees it: sub-questions, hops, refusals, budgets.

The corpus is the graph tests' company wiki (`kg_corpus/`): staff profiles (张伟 works at 星河科技), company
pages (星河科技's headquarters are in 杭州, 云帆网络's in 深圳) and distractors.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
from graph_support import MemoryRetriever, embedder

from sieve.graphs.deep_research.runner import research, stream_research
from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.wiring import NamedKnowledgeBaseRetriever
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.faults import Faults
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.types import SearchFilter

CORPUS = Path(__file__).with_name("kg_corpus")


class ProfiledMemoryRetriever(MemoryRetriever):
    """The in-memory retriever with a stored profile, as the production retriever has one."""

    def __init__(self, profile: RetrievalProfile, **kwargs):
        super().__init__(embedder(), {p.name: p.read_text(encoding="utf-8") for p in sorted(CORPUS.iterdir())}, **kwargs)
        self.stored = profile

    async def profile(self, flt: SearchFilter) -> RetrievalProfile:
        return self.stored


def wiki_context(**profile) -> GraphContext:
    retriever = ProfiledMemoryRetriever(RetrievalProfile(**profile))
    return GraphContext(retriever=retriever, embedder=embedder(), embedder_timeout_s=5.0)


def cited_files(text: str, citations: list[dict]) -> set[str]:
    return {citations[int(n) - 1]["filename"] for n in re.findall(r"\[(\d+)\]", text)}


async def test_a_comparison_gets_one_section_per_company_each_cited_from_its_own_page():
    result = await research("星河科技和云帆网络的总部分别在哪里？", kb="samples", context=wiki_context())
    sections = result["research"]["sections"]
    assert [s["question"] for s in sections] == ["星河科技的总部在哪里？", "云帆网络的总部在哪里？"]
    assert not any(s["refused"] for s in sections)
    assert cited_files(sections[0]["text"], result["citations"]) == {"xinghe-company.md"}
    assert cited_files(sections[1]["text"], result["citations"]) == {"yunfan-company.md"}
    assert "杭州" in sections[0]["text"] and "深圳" in sections[1]["text"]
    assert result["research"]["stop_reason"] == "answered" and not result["refused"]


async def test_an_entity_hop_goes_from_the_person_to_the_company_to_its_headquarters():
    result = await research("张伟所在公司的总部在哪里？", kb="samples", context=wiki_context())
    done = result["research"]
    # the company is named by the profile the first step kept, and the next step asks about it
    assert any("星河科技" in step["query"] and step["kept"] for step in done["steps"])
    assert {c["filename"] for c in result["citations"]} >= {"zhangwei-profile.md", "xinghe-company.md"}
    hop = done["sections"][-1]
    assert hop["question"] == "星河科技的总部在哪里？" and "杭州" in hop["text"]
    assert cited_files(hop["text"], result["citations"]) == {"xinghe-company.md"}
    assert done["stop_reason"] == "answered" and done["steps_used"] >= 2


async def test_a_comparison_named_by_a_noun_asks_each_part_as_a_question():
    result = await research("比较星河科技和云帆网络的总部所在地", kb="samples", context=wiki_context())
    sections = result["research"]["sections"]
    assert [s["question"] for s in sections] == ["星河科技的总部在哪里？", "云帆网络的总部在哪里？"]
    assert "杭州" in sections[0]["text"] and "深圳" in sections[1]["text"]
    assert result["research"]["stop_reason"] == "answered"


async def test_a_three_hop_chain_takes_one_round_a_hop_and_ends_on_the_city_page():
    result = await research("张伟所在公司的总部所在城市以什么闻名？", kb="samples", context=wiki_context())
    done = result["research"]
    city = done["sections"][-1]
    # an open question about the city the research found: the city's page answers it
    assert city["question"] == "杭州以什么闻名？" and "西湖" in city["text"]
    assert cited_files(city["text"], result["citations"]) == {"hangzhou-city.md"}
    assert done["stop_reason"] == "answered" and done["steps_used"] == 3


async def test_where_someone_works_is_answered_by_the_sentence_naming_the_company():
    result = await research("张伟和李明分别在哪里工作？", kb="samples", context=wiki_context())
    first, second = result["research"]["sections"]
    assert "星河科技" in first["text"] and "云帆网络" in second["text"]


# a bilingual wiki: a Chinese profile of someone at a company only an English page describes, and an
# English profile of someone at 星河科技, which only the Chinese page describes
CROSS_LANGUAGE = {
    "sunli-profile.md": "# 员工风采：孙丽\n\n孙丽毕业于厦门大学，2019年加入Harbor Analytics，"
                        "目前在Harbor Analytics担任数据分析师。业余时间，孙丽喜欢划船。\n",
    "harbor-company.md": "# About Harbor Analytics\n\nHarbor Analytics was founded in 2013 and forecasts cargo volumes for "
                         "ports. The headquarters of Harbor Analytics are in Seattle. It employs about 90 people.\n",
    "ryan-profile.md": "# Staff profile: Ryan Lee\n\nRyan Lee studied economics in Boston. He joined 星河科技 in 2020 and "
                       "works for 星河科技 as a product analyst. He coaches a youth football team.\n",
}


def cross_language_context() -> GraphContext:
    docs = {p.name: p.read_text(encoding="utf-8") for p in sorted(CORPUS.iterdir())} | CROSS_LANGUAGE
    return GraphContext(retriever=MemoryRetriever(embedder(), docs), embedder=embedder(), embedder_timeout_s=5.0)


@pytest.mark.parametrize(("asked", "profile", "company", "headquarters"), [
    ("孙丽所在公司的总部在哪里？", "sunli-profile.md", "harbor-company.md", "Seattle"),
    ("Where is the headquarters of the company that Ryan Lee works for?", "ryan-profile.md", "xinghe-company.md", "杭州"),
])
async def test_a_hop_crosses_from_one_language_to_the_other_and_cites_both_documents(asked, profile, company,
                                                                                       headquarters):
    result = await research(asked, kb="samples", context=cross_language_context())
    done = result["research"]
    bridge, hop = done["sections"]
    assert cited_files(bridge["text"], result["citations"]) == {profile}
    # the hop asks about the company the profile names, in the question's language, and the other
    # language's page answers it (not Ryan Lee's profile, which names 星河科技 too)
    assert headquarters in hop["text"] and cited_files(hop["text"], result["citations"]) == {company}
    assert {c["filename"] for c in result["citations"]} == {profile, company}
    assert done["stop_reason"] == "answered" and not done["refused_parts"]


async def test_a_part_nothing_supports_is_refused_by_name_and_the_rest_is_answered():
    result = await research("星河科技和火星矿业集团的总部分别在哪里？", kb="samples", context=wiki_context(max_steps=10))
    done = result["research"]
    assert done["refused_parts"] == ["火星矿业集团的总部在哪里？"]
    assert "火星矿业集团的总部在哪里？" in result["answer"]  # the report says which part it does not answer
    refused = [s for s in done["sections"] if s["refused"]]
    assert len(refused) == 1 and not re.search(r"\[\d+\]", refused[0]["text"])  # nothing is cited for it
    assert not result["refused"] and "杭州" in result["answer"]
    # a looser query, then the entities the kept passages name: every follow-up was tried, none found it
    assert done["stop_reason"] == "no_progress" and done["steps_used"] < 10


async def test_the_step_limit_stops_a_hop_half_way_and_says_so():
    result = await research("张伟所在公司的总部在哪里？", kb="samples", context=wiki_context(max_steps=1))
    assert result["research"]["stop_reason"] == "step_limit"
    assert result["research"]["steps_used"] == 1
    assert result["research"]["refused_parts"]  # the headquarters were never reached


async def test_the_stream_reports_plan_steps_and_stop_before_the_report():
    events = [event async for event in stream_research("星河科技和云帆网络的总部分别在哪里？", kb="samples",
                                                       context=wiki_context())]
    types = [event.type for event in events]
    assert types[0] == "plan" and types[-1] == "done"
    assert types.index("stop") < types.index("token")
    steps = [event.data for event in events if event.type == "step"]
    assert {step["query"] for step in steps} == {"星河科技的总部在哪里？", "云帆网络的总部在哪里？"}
    assert all(step["kept"] for step in steps)
    assert "".join(event.data["text"] for event in events if event.type == "token") == events[-1].data["answer"]


@pytest.mark.parametrize("assignment", ["research_budget_ms=0", "research_budget_ms=NaN", "max_steps=0",
                                        "max_steps=1e9", "research_budget_ms=99999999"])
def test_research_limits_in_the_profile_are_validated(assignment):
    with pytest.raises(ValueError, match=assignment.split("=")[0]):
        RetrievalProfile().assigned([assignment])


def test_a_stuck_recall_path_cannot_hold_the_report_past_the_budget_and_a_failing_one_is_reported(stack, tmp_path):
    """BM25 stuck for 5 s under a 1 s research budget (and retrieval budgets that would wait it out):
    the report still arrives, says the budget ran out, and names the abandoned steps."""
    folder = tmp_path / "wiki"
    shutil.copytree(CORPUS, folder)
    Ingestor(stack).ingest_paths([folder], "wiki", "t1")
    with stack.sessions.begin() as session:
        get_or_create_kb(session, "t1", "wiki").profile = {
            "paths": ["bm25"], "path_budget_ms": 60_000, "total_budget_ms": 60_000, "research_budget_ms": 1000,
        }
    hybrid = HybridRetriever(stack, faults=Faults.parse("bm25:delay=5s"))
    retriever = NamedKnowledgeBaseRetriever(stack, hybrid)
    context = GraphContext(retriever=retriever, embedder=hybrid.embedder, embedder_timeout_s=5.0)
    try:
        result = asyncio.run(research("星河科技和云帆网络的总部分别在哪里？", kb="wiki", tenant="t1", context=context))
    finally:
        hybrid.close()
    done = result["research"]
    assert done["stop_reason"] == "budget_spent"
    assert done["steps"] and all(step["timed_out"] for step in done["steps"])
    assert done["refused_parts"] == ["星河科技的总部在哪里？", "云帆网络的总部在哪里？"]
    assert result["answer"]  # a report, however empty, not an error

    # a recall path that fails is reported in `degraded`, as in every answer; the other path answers
    with stack.sessions.begin() as session:
        get_or_create_kb(session, "t1", "wiki").profile = {"paths": ["bm25", "dense"], "research_budget_ms": 60_000}
    hybrid = HybridRetriever(stack, faults=Faults.parse("bm25:error"))
    context = GraphContext(retriever=NamedKnowledgeBaseRetriever(stack, hybrid), embedder=hybrid.embedder,
                           embedder_timeout_s=5.0)
    try:
        result = asyncio.run(research("星河科技和云帆网络的总部分别在哪里？", kb="wiki", tenant="t1", context=context))
    finally:
        hybrid.close()
    assert result["degraded"] == ["bm25_error"]
    assert result["research"]["stop_reason"] == "answered" and "杭州" in result["answer"]


async def test_with_an_llm_the_plan_is_its_structured_decision_and_a_failing_llm_is_reported():
    from scripted_llm import ScriptedChatModel, decision

    # the model plans two sub-questions, then fails: the rest of the research is deterministic
    llm = ScriptedChatModel(script=[
        decision("ResearchPlan", sub_questions=["星河科技的总部在哪里？", "云帆网络的总部在哪里？"]),
        RuntimeError("the LLM server went away"), RuntimeError("the LLM server went away"),
    ])
    context = wiki_context().model_copy(update={"llm": llm})
    result = await research("这两家公司的总部各在哪个城市：星河科技、云帆网络", kb="samples", context=context)
    assert [s["question"] for s in result["research"]["plan"]] == ["星河科技的总部在哪里？", "云帆网络的总部在哪里？"]
    assert "llm_error" in result["degraded"]
    assert "杭州" in result["answer"] and "深圳" in result["answer"]


async def test_a_slow_llm_plans_within_a_share_of_the_budget_and_the_rules_answer_in_the_rest():
    from scripted_llm import ScriptedChatModel, Slow, decision

    # a model slower than the whole budget (a small model on a busy CPU): without a cap its plan would use it all
    late = decision("ResearchPlan", sub_questions=["星河科技的总部在哪里？"])
    llm = ScriptedChatModel(script=[Slow(30, late) for _ in range(8)])
    context = wiki_context(research_budget_ms=4000).model_copy(update={"llm": llm, "llm_timeout_s": 20.0})
    result = await research("星河科技和云帆网络的总部分别在哪里？", kb="samples", context=context)
    assert "llm_timeout" in result["degraded"]
    assert result["research"]["stop_reason"] == "answered"
    assert "杭州" in result["answer"] and "深圳" in result["answer"]
