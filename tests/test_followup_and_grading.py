"""Deterministic follow-up rewriting and evidence grading, without models."""

from __future__ import annotations

import pytest

from sieve.graphs.agentic_rag.followup import rewrite_followup
from sieve.graphs.shared.context import Thresholds
from sieve.graphs.shared.extractive import extractive_answer
from sieve.graphs.shared.grading import KeptReadings, answer_kind, gather_evidence, grade_passages, read_passages
from sieve.graphs.shared.state import Passage


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


LIMITS = Thresholds().grade_limits("zh")  # what the grade node ships with


def test_a_passage_stating_the_asked_for_number_is_kept():
    graded = grade_passages("2022年星河公司的营收是多少", [passage("2022年，星河公司的营收为35亿元，同比增长12%。")],
                            "zh", LIMITS, 4)
    assert graded.outcome == "kept"


def test_an_on_topic_passage_without_the_answer_is_not():
    text = "星河公司是一家位于杭州的软件企业。2022年星河公司发布了新的品牌标识。"
    graded = grade_passages("2022年星河公司的营收是多少", [passage(text)], "zh", LIMITS, 4)
    assert graded.outcome == "no_evidence" and graded.kept == []


def test_the_years_asked_about_must_match():
    graded = grade_passages("2022年星河公司的营收是多少", [passage("2021年星河公司的营收为30亿元。")], "zh", LIMITS, 4)
    assert graded.outcome == "no_evidence"


def test_the_passage_that_names_the_asked_for_person_is_kept_first():
    first = passage("关于星河公司的创始人，报道称是李明远。", doc="a")
    second = passage("星河公司由李明远在杭州创办，他曾任工程师。", doc="b")
    graded = grade_passages("星河公司的创始人是谁", [second, first], "zh", LIMITS, 4)
    assert graded.outcome == "kept" and graded.kept[0]["doc_id"] == "a"


def test_a_refusal_names_the_missing_evidence():
    text = "星河公司是一家位于杭州的软件企业。2022年星河公司发布了新的品牌标识。"
    graded = grade_passages("2022年星河公司的营收是多少", [passage(text)], "zh", LIMITS, 4)
    assert graded.outcome == "no_evidence" and ("营收" in graded.explanation or "数字" in graded.explanation)
    text = "Northwind was founded in 1998 by Ana Lopez. Northwind sells maps."
    graded = grade_passages("Where is Northwind headquartered?", [passage(text)], "en", Thresholds().grade_limits("en"), 4)
    assert graded.outcome == "no_evidence" and ("headquartered" in graded.explanation or "place" in graded.explanation)


def test_english_questions_need_their_key_terms_and_kind_of_answer():
    text = "Northwind was founded in 1998 by Ana Lopez. Northwind is headquartered in Lisbon, Portugal."
    assert grade_passages("Where is Northwind headquartered?", [passage(text)], "en", LIMITS, 4).outcome == "kept"
    assert grade_passages("Who won the 1998 chess olympiad?", [passage(text)], "en", LIMITS, 4).outcome == "no_evidence"


def test_irrelevant_passages_are_refused_before_reading_them():
    graded = grade_passages("星河公司的创始人是谁", [passage("星河公司由李明远创办。", relevance=0.5)], "zh", LIMITS, 4)
    assert graded.outcome == "below_threshold" and graded.best_relevance == 0.5


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("2022春节档票房冠军是哪部电影", "work"),  # a film, not a sum, though it says 票房
        ("谁是中国影史首个票房达到300亿元的演员", "person"),
        ("世界杯冠军获得了多少奖金", "number"),  # the interrogative decides, not 冠军
        ("2022中国足协杯冠军是谁", "name"),  # a champion may be a club
        ("2023年C罗在哪个球队", "name"),
        ("特拉斯当了多久首相", "number"),
        ("乌镇峰会举办时间", "date"),
        ("Which team won the 2022 final?", "name"),
        ("What screen size does the Lumen X2 have?", "value"),  # one particular value, not an explanation
        ("What is the battery life of the Lumen X1?", "value"),
        ("What does Apple Inc. sell?", "other"),
    ],
)
def test_the_kind_of_answer_asked_for(question, kind):
    assert answer_kind(question, "en" if question.isascii() else "zh") == kind


def test_a_sentence_missing_the_one_constraint_no_passage_meets_is_not_an_answer():
    # every passage is about 宝马's 2021 sales; none gives the *global* figure the question asks for
    passages = [
        passage("2021年宝马集团在华销量创历史新高，交付新车84.6万辆。", doc="a"),
        passage("2021年宝马品牌在美国的销量为33.6万辆。", doc="b"),
        passage("2021年宝马iX3销量突破2.1万辆。", doc="c"),
    ]
    assert grade_passages("2021年宝马全球销量是多少", passages, "zh", LIMITS, 4).outcome == "no_evidence"
    passages.append(passage("2021年宝马集团全球销量为252.1万辆。", doc="d"))
    graded = grade_passages("2021年宝马全球销量是多少", passages, "zh", LIMITS, 4)
    assert [p["doc_id"] for p in graded.kept] == ["d"]


@pytest.mark.parametrize(
    ("question", "text"),
    [
        ("How does photosynthesis work?", "Photosynthesis turns carbon dioxide and water into glucose using light."),
        ("Where does the marathon come from?", "The marathon commemorates the run of Pheidippides from Marathon to Athens."),
        ("Which phones does Apple make?", "Apple designs and sells the iPhone smartphone."),
    ],
)
def test_light_verbs_are_not_key_terms_and_compounds_match_their_head(question, text):
    assert grade_passages(question, [passage(text)], "en", Thresholds().grade_limits("en"), 4).outcome == "kept"


@pytest.mark.parametrize(
    ("question", "intro", "stating", "naming_only"),
    [
        ("What is the battery life of the Lumen X1?", "The Lumen X1 is a phone sold by Corvid Mobile.",
         "Its battery is rated for 19 hours of video playback.",
         "Reviewers tested the battery of the Lumen X1 with screen brightness fixed at half."),
        ("Which protocol does Harbor Sync use for transport?", "Harbor Sync is a file synchronisation tool.",
         "Harbor Sync uses QUIC for transport.", "The transport of Harbor Sync is described in its manual."),
    ],
)
def test_a_question_asking_for_one_value_needs_a_sentence_stating_one(question, intro, stating, naming_only):
    limits = Thresholds().grade_limits("en")
    assert grade_passages(question, [passage(f"{intro} {stating}")], "en", limits, 4).outcome == "kept"
    refused = grade_passages(question, [passage(f"{intro} {naming_only}")], "en", limits, 4)
    assert refused.outcome == "no_evidence" and refused.explanation


@pytest.mark.parametrize(("question", "lang"), [("星河公司的创始人是谁", "zh"), ("Who founded Xinghe Corp?", "en")])
def test_the_answer_reuses_gradings_reading_and_quotes_what_a_fresh_reading_would(question, lang):
    passages = [
        passage("星河公司由李明远在杭州创办，他曾任工程师。", doc="a"),
        passage("关于星河公司的创始人，报道称是李明远。", doc="b"),
        passage("Xinghe Corp was founded by Li Mingyuan in Hangzhou. It makes software.", doc="c"),
        passage("星河公司是一家位于杭州的软件企业。", doc="d"),
    ]
    readings = read_passages(question, passages, lang)  # what grading read, over every retrieved passage
    kept = [passages[2], passages[0]]
    reused = KeptReadings(question, lang, ("c", "a"), (readings[2], readings[0])).of(question, lang, kept)
    assert reused is not None
    # the term weights come from the kept passages alone, as when the answer read them itself
    assert gather_evidence(question, kept, lang, reused) == gather_evidence(question, kept, lang)
    assert extractive_answer(question, kept, lang, 3, reused) == extractive_answer(question, kept, lang, 3)
    # another question's reading, or other passages', is not taken
    assert KeptReadings("星河公司在哪里", lang, ("c", "a"), (readings[2], readings[0])).of(question, lang, kept) is None
    assert KeptReadings(question, lang, ("a", "c"), (readings[0], readings[2])).of(question, lang, kept) is None
