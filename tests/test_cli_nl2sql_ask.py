"""The article's NL2SQL example end to end in deterministic mode, through the real `sieve` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

KB = Path(__file__).resolve().parent / "nl2sql_kb"  # 张伟's and 李娜's reports, owners/dates in front matter
QUESTION = "找一下张伟在2023年关于大模型训练方面的工作总结"


@pytest.fixture(scope="module")
def work_home(tmp_path_factory):
    from conftest import run_sieve

    home = tmp_path_factory.mktemp("nl2sql-home")
    report = json.loads(run_sieve(home, "ingest", str(KB), "--kb", "work", "--json").stdout)
    assert report["added"] == 4 and not report["failed"]
    docs = json.loads(run_sieve(home, "docs", "list", "--kb", "work", "--json").stdout)
    return home, {d["filename"]: d["doc_id"] for d in docs}


def test_only_zhang_weis_2023_documents_are_searched_and_one_is_cited(sieve, work_home):
    home, ids = work_home
    narrowed = json.loads(sieve(home, "nl2sql", "ask", QUESTION, "--kb", "work", "--json").stdout)
    assert set(narrowed["doc_ids"]) == {ids["zw-2023-q2.md"], ids["zw-2023-trip.md"]}
    assert "张伟" in narrowed["sql"] and "tenant_id" in narrowed["sql"]

    answer = json.loads(sieve(home, "ask", QUESTION, "--kb", "work", "--json").stdout)
    assert not answer["refused"]
    assert {c["doc_id"] for c in answer["citations"]} == {ids["zw-2023-q2.md"]}
    assert "大模型训练" in answer["answer"]


def test_a_metadata_question_is_answered_by_listing_the_documents(sieve, work_home):
    home, _ = work_home
    answer = json.loads(sieve(home, "ask", "张伟2023年上传了哪些文件", "--kb", "work", "--json").stdout)
    assert not answer["refused"]
    assert "zw-2023-q2.md" in answer["answer"] and "zw-2023-trip.md" in answer["answer"]
    assert "zw-2024-q1.md" not in answer["answer"] and "ln-2023.md" not in answer["answer"]
