"""Deterministic follow-up rewriting and evidence grading, without models."""

from __future__ import annotations

import pytest

from sieve.graphs.followup import rewrite_followup
from sieve.graphs.grading import GradeLimits, grade_passages
from sieve.graphs.state import Passage


@pytest.mark.parametrize(
    ("question", "previous", "topic", "expected"),
    [
        ("它的总部在哪里", "苹果公司是做什么的", "", "苹果公司的总部在哪里"),
        ("那总部呢", "苹果公司是做什么的", "", "苹果公司的总部"),
        ("其创始人是谁", "华为技术有限公司成立于哪一年", "", "华为技术有限公司的创始人是谁"),
        ("这家公司成立于哪一年", "华为是做什么的", "", "华为成立于哪一年"),
        ("那华为呢", "它的总部在哪里", "苹果公司", "华为的总部在哪里"),
        ("Where is its headquarters?", "What does Apple Inc. do?", "", "Where is Apple Inc's headquarters?"),
        ("what about its revenue", "What does Apple do?", "", "Apple's revenue"),
        ("what about Microsoft?", "Where is Apple headquartered?", "", "Where is Microsoft headquartered?"),
        ("When was this company founded?", "Tell me about Huawei", "", "When was Huawei founded?"),
    ],
)
def test_follow_ups_are_resolved_against_the_previous_turn(question, previous, topic, expected):
    assert rewrite_followup(question, previous, topic=topic).query == expected


@pytest.mark.parametrize(
    ("question", "previous"),
    [("山东苹果什么时候采摘", "苹果公司是做什么的"), ("What is photosynthesis?", "What does Apple do?"), ("它的总部在哪里", "")],
)
def test_standalone_questions_and_first_turns_are_left_alone(question, previous):
    assert rewrite_followup(question, previous).query == question


def passage(text: str, relevance: float = 0.9, doc: str = "d") -> Passage:
    return Passage(chunk_id=doc, doc_id=doc, filename=doc, text=text, score=1.0, relevance=relevance, path_scores={})


LIMITS = GradeLimits(min_relevance=0.8, evidence=0.5, strong_evidence=0.8)


def test_a_passage_stating_the_asked_for_number_is_kept():
    graded = grade_passages("2022年星河公司的营收是多少", [passage("2022年，星河公司的营收为35亿元，同比增长12%。")], "zh", LIMITS, 4)
    assert graded.outcome == "kept"


def test_an_on_topic_passage_without_the_answer_is_not():
    text = "星河公司是一家位于杭州的软件企业。2022年星河公司发布了新的品牌标识。"
    graded = grade_passages("2022年星河公司的营收是多少", [passage(text)], "zh", LIMITS, 4)
    assert graded.outcome == "no_evidence" and graded.kept == []


def test_the_years_asked_about_must_match():
    graded = grade_passages("2022年星河公司的营收是多少", [passage("2021年星河公司的营收为30亿元。")], "zh", LIMITS, 4)
    assert graded.outcome == "no_evidence"


def test_two_sources_agreeing_on_an_answer_corroborate_each_other():
    first = passage("关于星河公司的创始人，报道称是李明远。", doc="a")
    second = passage("星河公司由李明远在杭州创办，他曾任工程师。", doc="b")
    graded = grade_passages("星河公司的创始人是谁", [first, second], "zh", GradeLimits(0.8, 0.5, 1.1), 4)
    assert {p["doc_id"] for p in graded.kept} == {"a", "b"}


def test_english_questions_need_their_key_terms_and_kind_of_answer():
    text = "Northwind was founded in 1998 by Ana Lopez. Northwind is headquartered in Lisbon, Portugal."
    assert grade_passages("Where is Northwind headquartered?", [passage(text)], "en", LIMITS, 4).outcome == "kept"
    assert grade_passages("Who won the 1998 chess olympiad?", [passage(text)], "en", LIMITS, 4).outcome == "no_evidence"


def test_irrelevant_passages_are_refused_before_reading_them():
    graded = grade_passages("星河公司的创始人是谁", [passage("星河公司由李明远创办。", relevance=0.5)], "zh", LIMITS, 4)
    assert graded.outcome == "below_threshold" and graded.best_relevance == 0.5
