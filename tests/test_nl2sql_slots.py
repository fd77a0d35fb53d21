"""Deterministic mode: date expressions (zh and en) against a fixed `now`, and values from the tenant's DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from nl2sql_fixtures import make_metadata_db

from sieve.nl2sql.compile import compile_slots
from sieve.nl2sql.dates import find_dates
from sieve.nl2sql.executor import execute_sqlite
from sieve.nl2sql.guard import guard
from sieve.nl2sql.schema import MetadataValues, metadata_allowlist, read_values
from sieve.nl2sql.slots import fill_slots

NOW = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)  # a Wednesday


def d(year: int, month: int, day: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


DATES = [
    # Chinese
    ("2023年的总结", d(2023, 1), d(2024, 1)),
    ("2023年度报告", d(2023, 1), d(2024, 1)),
    ("2023年3月的周报", d(2023, 3), d(2023, 4)),
    ("2023年三月的周报", d(2023, 3), d(2023, 4)),
    ("2023年12月的周报", d(2023, 12), d(2024, 1)),
    ("2023年3月5日的会议纪要", d(2023, 3, 5), d(2023, 3, 6)),
    ("上个月的文件", d(2024, 4), d(2024, 5)),
    ("上月的文件", d(2024, 4), d(2024, 5)),
    ("上上个月的文件", d(2024, 3), d(2024, 4)),
    ("本月的文件", d(2024, 5), d(2024, 6)),
    ("这个月的文件", d(2024, 5), d(2024, 6)),
    ("今年的总结", d(2024, 1), d(2025, 1)),
    ("去年的总结", d(2023, 1), d(2024, 1)),
    ("前年的总结", d(2022, 1), d(2023, 1)),
    ("去年第三季度的报告", d(2023, 7), d(2023, 10)),
    ("今年第一季度", d(2024, 1), d(2024, 4)),
    ("去年Q4", d(2023, 10), d(2024, 1)),
    ("去年3月", d(2023, 3), d(2023, 4)),
    ("去年下半年", d(2023, 7), d(2024, 1)),
    ("2023年第四季度", d(2023, 10), d(2024, 1)),
    ("2023Q3", d(2023, 7), d(2023, 10)),
    ("2023年上半年", d(2023, 1), d(2023, 7)),
    ("2023年3月到5月", d(2023, 3), d(2023, 6)),
    ("2022年到2024年", d(2022, 1), d(2025, 1)),
    ("2023年3月到2024年2月", d(2023, 3), d(2024, 3)),
    ("本季度", d(2024, 4), d(2024, 7)),
    ("上个季度", d(2024, 1), d(2024, 4)),
    ("本周", d(2024, 5, 13), d(2024, 5, 20)),
    ("上周", d(2024, 5, 6), d(2024, 5, 13)),
    ("今天", d(2024, 5, 15), d(2024, 5, 16)),
    ("昨天", d(2024, 5, 14), d(2024, 5, 15)),
    ("最近30天", d(2024, 4, 15, 10, 30), NOW),
    ("最近7天", d(2024, 5, 8, 10, 30), NOW),
    ("最近三天", d(2024, 5, 12, 10, 30), NOW),
    ("近三个月", d(2024, 2, 15, 10, 30), NOW),
    ("过去一年", d(2023, 5, 15, 10, 30), NOW),
    ("三月份的会议纪要", d(2024, 3), d(2024, 4)),
    ("2024年1月1日以来", d(2024, 1), None),
    ("从2024-01-01起", d(2024, 1), None),
    ("2023年以前", None, d(2023, 1)),
    ("2023年3月之后", d(2023, 4), None),
    # English
    ("which files did I upload last month", d(2024, 4), d(2024, 5)),
    ("documents from this month", d(2024, 5), d(2024, 6)),
    ("summaries from this year", d(2024, 1), d(2025, 1)),
    ("reports from last year", d(2023, 1), d(2024, 1)),
    ("the year before last", d(2022, 1), d(2023, 1)),
    ("Q3 2023 reports", d(2023, 7), d(2023, 10)),
    ("2023 Q4 reports", d(2023, 10), d(2024, 1)),
    ("the third quarter of 2023", d(2023, 7), d(2023, 10)),
    ("Q3 of last year", d(2023, 7), d(2023, 10)),
    ("the first half of 2023", d(2023, 1), d(2023, 7)),
    ("notes written in 2023", d(2023, 1), d(2024, 1)),
    ("March 2024 minutes", d(2024, 3), d(2024, 4)),
    ("minutes of March 5, 2024", d(2024, 3, 5), d(2024, 3, 6)),
    ("between March and May 2024", d(2024, 3), d(2024, 6)),
    ("from March to May 2024", d(2024, 3), d(2024, 6)),
    ("between 2023-01-01 and 2023-06-30", d(2023, 1), d(2023, 7)),
    ("from 2021 to 2022", d(2021, 1), d(2023, 1)),
    ("since 2024-01-01", d(2024, 1), None),
    ("after March 2024", d(2024, 4), None),
    ("before 2024", None, d(2024, 1)),
    ("this quarter", d(2024, 4), d(2024, 7)),
    ("last quarter", d(2024, 1), d(2024, 4)),
    ("this week", d(2024, 5, 13), d(2024, 5, 20)),
    ("last week", d(2024, 5, 6), d(2024, 5, 13)),
    ("today", d(2024, 5, 15), d(2024, 5, 16)),
    ("yesterday", d(2024, 5, 14), d(2024, 5, 15)),
    ("the last 7 days", d(2024, 5, 8, 10, 30), NOW),
    ("past three months", d(2024, 2, 15, 10, 30), NOW),
    ("in March", d(2024, 3), d(2024, 4)),
    ("in June", d(2023, 6), d(2023, 7)),  # June has not come yet this year: the last June
]


@pytest.mark.parametrize(("text", "start", "end"), DATES, ids=[t for t, _, _ in DATES])
def test_date_expression_resolves_to_half_open_range(text, start, end):
    found = find_dates(text, NOW)
    assert len(found) == 1, found
    assert (found[0].start, found[0].end) == (start, end)


def test_relative_dates_follow_the_callers_time_zone():
    beijing = timezone(timedelta(hours=8))
    found = find_dates("今年", datetime(2024, 1, 1, 3, 0, tzinfo=beijing))  # still 2023 in UTC
    assert found[0].start == datetime(2024, 1, 1, tzinfo=beijing)


@pytest.mark.parametrize("text", ["report-2023.pdf", "大模型训练的最佳实践", "version 10.2023.1", "you may go"])
def test_text_without_a_date_has_no_date_condition(text):
    assert find_dates(text, NOW) == []


def test_impossible_day_falls_back_to_its_month():
    found = find_dates("2023年2月30日", NOW)
    assert [(m.start, m.end) for m in found] == [(d(2023, 2), d(2023, 3))]


VALUES = MetadataValues(
    owners=("张伟", "张伟伟", "李娜", "Ann Lee", "Ann"),
    filenames=("周报-2024-04.md", "eval.pdf"),
    tags=("周报", "大模型"),
    kb_names=("研发部", "hr"),
)


def test_article_question_splits_into_conditions_and_content():
    slots = fill_slots("找一下张伟在2023年关于大模型训练方面的工作总结", VALUES, NOW)
    assert slots.owners == ("张伟",)
    assert (slots.start, slots.end) == (d(2023, 1), d(2024, 1))
    assert not slots.metadata_question
    assert slots.content_query == "大模型训练 工作总结"


@pytest.mark.parametrize(
    "question",
    ["我上个月上传了哪些叫周报的文件", "which files did I upload last month", "列出张伟的文档", "list Ann Lee's documents"]
)
def test_pure_metadata_questions_are_recognised(question):
    slots = fill_slots(question, VALUES, NOW)
    assert slots.metadata_question and slots.content_query == ""


def test_named_file_becomes_a_name_condition():
    slots = fill_slots("我上个月上传了哪些叫周报的文件", VALUES, NOW)
    assert slots.names == ("周报",) and slots.tags == ()


def test_longest_name_wins_and_latin_names_need_word_boundaries():
    assert fill_slots("张伟伟的周报", VALUES, NOW).owners == ("张伟伟",)
    assert fill_slots("Ann Lee's annual plan", VALUES, NOW).owners == ("Ann Lee",)
    assert fill_slots("the annual plan", VALUES, NOW).owners == ()
    assert fill_slots("张伟和李娜去年写的报告", VALUES, NOW).owners == ("张伟", "李娜")


def test_tags_need_a_tag_cue_filenames_and_kbs_match_exactly():
    assert fill_slots("大模型训练的经验", VALUES, NOW).tags == ()
    assert fill_slots("标签为大模型的文档", VALUES, NOW).tags == ("大模型",)
    assert fill_slots("eval.pdf 里讲了什么", VALUES, NOW).filenames == ("eval.pdf",)
    assert fill_slots("研发部里张伟的文档", VALUES, NOW).kb_names == ("研发部",)
    assert fill_slots("研发部里张伟的文档", VALUES, NOW, match_kb_names=False).kb_names == ()


def test_content_question_about_a_file_keeps_the_question():
    slots = fill_slots("eval.pdf 里讲了什么", VALUES, NOW)
    assert not slots.metadata_question and slots.content_query == "eval.pdf 里讲了什么"


def test_question_without_conditions_is_left_alone():
    slots = fill_slots("大模型训练的最佳实践是什么", VALUES, NOW)
    assert not slots.has_conditions and slots.content_query == "大模型训练的最佳实践是什么"


def test_compiled_slots_select_exactly_the_matching_documents(tmp_path):
    db = make_metadata_db(tmp_path)
    values = read_values(db.engine, "t1")
    assert set(values.owners) == {"张伟", "李娜", "Ann Lee"} and "周报" in values.tags
    slots = fill_slots("找一下张伟在2023年关于大模型训练方面的工作总结", values, NOW)
    sql = guard(compile_slots(slots), metadata_allowlist(), tenant="t1", max_rows=1000)
    assert {r[0] for r in execute_sqlite(db.path, sql, max_rows=1000).rows} == {"zw-2023-train", "zw-2023-q4"}
    tagged = fill_slots("标签是周报的文档", values, NOW)
    sql = guard(compile_slots(tagged), metadata_allowlist(), tenant="t1", max_rows=1000)
    assert {r[0] for r in execute_sqlite(db.path, sql, max_rows=1000).rows} == {"zw-2023-q4", "ln-2024-weekly"}


@pytest.mark.parametrize(
    ("question", "narrows"),
    [
        ("谁赢得了2022年世界杯？", False),
        ("What happened in 2023 to interest rates?", False),
        ("2023年的工作总结", True),
        ("files uploaded last month", True),
    ],
)
def test_a_date_narrows_only_questions_about_documents(question, narrows):
    slots = fill_slots(question, MetadataValues(), NOW)
    assert (slots.start is not None) is narrows
    if not narrows:
        assert slots.content_query == question.strip()
