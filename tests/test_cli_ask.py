"""Deterministic mode end to end: the real `sieve ask` over the ingested sample KB (no LLM configured)."""

from __future__ import annotations

import json

import pytest


def ask(sieve, home, question: str, *extra: str) -> dict:
    return json.loads(sieve(home, "ask", question, "--kb", "demo", "--json", *extra).stdout)


def test_a_greeting_goes_to_chat(sieve, demo_home):
    result = ask(sieve, demo_home, "你好")
    assert result["route"] == "chat" and not result["refused"] and result["answer"]
    assert result["citations"] == []


@pytest.mark.parametrize(
    ("question", "follow_up", "entity", "where", "cited"),
    [
        ("苹果公司是做什么的", "它的总部在哪里", "苹果公司", "库比蒂诺", {"apple-china.md", "apple-inc.md"}),
        ("What does Apple Inc. do?", "Where is its headquarters?", "Apple", "Cupertino", {"apple-inc.md"}),
    ],
)
def test_answers_with_citations_and_resolves_the_follow_up(sieve, demo_home, question, follow_up, entity, where, cited):
    thread = f"thread-{entity}"
    first = ask(sieve, demo_home, question, "--thread", thread)
    assert first["route"] == "kb" and not first["refused"]
    assert {c["filename"] for c in first["citations"]} == cited  # the English document too, for the Chinese question
    assert first["citations"][0]["filename"] == ("apple-china.md" if entity == "苹果公司" else "apple-inc.md")
    assert "[1]" in first["answer"]
    for citation in first["citations"]:  # quotes are verbatim passages, not paraphrase
        assert citation["quote"] and citation["chunk_id"] and citation["doc_id"]

    second = ask(sieve, demo_home, follow_up, "--thread", thread)
    assert entity in second["rewritten_query"]
    assert not second["refused"] and where in second["answer"]


@pytest.mark.parametrize("question", ["秘鲁的首都是哪里？", "What is the capital of Peru?", "谁赢得了2022年世界杯？"])
def test_an_unanswerable_question_is_refused_with_a_reason(sieve, demo_home, question):
    result = ask(sieve, demo_home, question)
    assert result["refused"] and result["refusal_reason"]
    assert result["citations"] == []
    for invented in ("Lima", "利马", "阿根廷", "Argentina"):
        assert invented not in result["answer"]


def test_human_output_shows_the_route_answer_and_citations(sieve, demo_home):
    text = sieve(demo_home, "ask", "华为公司的总部在哪里", "--kb", "demo").stdout
    assert "route: kb" in text and "深圳" in text and "[1] huawei.md" in text


@pytest.mark.parametrize("question", ["Who is the CEO of Apple?", "苹果公司的CEO是谁"])
def test_the_ceo_is_quoted_from_the_document_that_names_him_in_either_language(sieve, demo_home, question):
    result = ask(sieve, demo_home, question)
    assert not result["refused"] and "Tim Cook" in result["answer"]
    assert [c["filename"] for c in result["citations"]] == ["apple-inc.md"]
    assert "chief executive" in result["citations"][0]["quote"]


def test_what_a_company_sells_is_answered_by_the_product_sentence_alone(sieve, demo_home):
    result = ask(sieve, demo_home, "What does Apple Inc. sell?")
    # the question and the cited "Apple Inc." document say what "It" is: no headquarters sentence
    assert result["answer"].startswith("It designs and sells consumer electronics")
    assert "headquartered" not in result["answer"]
    assert {c["filename"] for c in result["citations"]} == {"apple-inc.md"}


def test_a_pronoun_answer_keeps_its_subject_when_the_question_does_not_name_the_document(sieve, demo_home):
    result = ask(sieve, demo_home, "苹果公司是做什么的")
    # the English document cited for a Chinese question: its "It designs ..." comes with the sentence naming Apple
    quote = next(c["quote"] for c in result["citations"] if c["filename"] == "apple-inc.md")
    assert quote.index("Apple Inc. is") < quote.index("It designs")
    assert "[1] Apple Inc." in result["answer"]  # an English quote after a Chinese one is set apart by a space


def test_human_output_prints_each_quote_once(sieve, demo_home):
    text = sieve(demo_home, "ask", "Who is the CEO of Apple?", "--kb", "demo").stdout
    assert text.count("Tim Cook") == 1 and "[1] apple-inc.md" in text
