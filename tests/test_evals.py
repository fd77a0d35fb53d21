"""The `sieve eval` runners: refusal and calibration, rewrite, nl2sql, and the LLM judge's control flow
(driven by langchain-core's fake chat model)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from synthetic_beir import synthetic_beir

from sieve.evals.beir import load_split
from sieve.evals.judge import Answered, average_precision, evaluate_judge
from sieve.evals.nl2sql import Question, execution_accuracy, guard_pass_rate
from sieve.evals.refusal import Row, Scores, calibration_half, evaluate_refusal, fit, gather
from sieve.evals.retrieval import configurations, evaluate_retrieval
from sieve.evals.rewrite import Dialog, char_f1, evaluate_rewrite, rouge_l
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.rerank import RerankerKind
from sieve.stores.catalog import get_kb
from sieve.stores.types import SearchFilter

REFUSAL_ROWS = SHARED_DATA / "rgb-zh" / "answer_or_refuse.jsonl"


class ToolCallingFake(FakeMessagesListChatModel):
    """langchain-core's fake model plays back `responses`; structured output binds a tool, which it ignores."""

    def bind_tools(self, tools, **kwargs):
        return self


def call(name: str, **args) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:6]}"}])


# ---- retrieval -------------------------------------------------------------------------------

async def test_retrieval_eval_adds_a_reranked_run(stack, tmp_path):
    split = load_split(synthetic_beir(tmp_path / "beir"), "train")
    Ingestor(stack).ingest_beir(split.corpus, "ev", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "ev").id)
    retriever = HybridRetriever(stack)
    try:
        runs = configurations(["bm25", "dense"], retriever.load_profile(flt.kb).unbounded(), RerankerKind.EMBEDDING)
        reports = await evaluate_retrieval(retriever, flt, split, runs)
    finally:
        retriever.close()
    assert [r.name for r in reports] == ["bm25", "dense", "fused", "fused+embedding"]
    assert all(r.degraded == 0 and r.queries == len(split.queries) for r in reports)
    assert {"hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@100"} <= set(reports[-1].metrics)
    assert reports[-1].metrics["hit@10"] > 0.5  # the topic's own document is among the top ten


# ---- refusal ---------------------------------------------------------------------------------

def test_scores_count_every_cell_of_the_confusion_matrix():
    scores = Scores.of([True, True, False, False, True], [True, False, False, True, True])
    assert scores.accuracy == 0.6 and scores.rows == 5
    assert scores.confusion == {"answerable/answered": 2, "answerable/refused": 1,
                                "unanswerable/answered": 1, "unanswerable/refused": 1}


def test_the_fitted_threshold_separates_on_the_providers_own_scale():
    # a provider on a 0..1 scale where answerable rows score high: the fit lands between the groups
    rows = [Row(f"{i}-{'pos' if i % 2 else 'neg'}", f"who founded company {i}", ["Apple was founded by Steve Jobs."],
                bool(i % 2)) for i in range(40)]
    answerable = {r.query: r.answerable for r in rows}
    evidence = gather(rows, lambda q, docs: [0.9 if answerable[q] else 0.1 for _ in docs], "en")
    threshold, accuracy = fit(evidence, [r.answerable for r in rows], relevance_only=True)
    assert 0.1 < threshold <= 0.9 and accuracy == 1.0
    reports = evaluate_refusal(rows, evidence)
    assert [r.name for r in reports] == ["relevance only", "relevance + evidence model"]
    assert reports[0].test.accuracy == 1.0
    assert {calibration_half(r) for r in rows} == {True, False}


@pytest.mark.skipif(not REFUSAL_ROWS.exists(), reason="shared rgb-zh data not present")
def test_calibrate_stores_the_threshold_in_the_profile(tmp_path, sieve, sample_kb):
    rows = [json.loads(line) for line in REFUSAL_ROWS.read_text(encoding="utf-8").splitlines()[:12]]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    home = tmp_path / "home"
    sieve(home, "ingest", str(sample_kb / "tea-culture.md"), "--kb", "cal")

    refusal = json.loads(sieve(home, "eval", "refusal", "--data", str(data), "--json").stdout)
    assert [r["name"] for r in refusal] == ["relevance only", "relevance + evidence model", "evidence model, shipped threshold"]
    assert all(r["test"]["rows"] + r["calibration"]["rows"] == 12 for r in refusal)

    calibrated = json.loads(sieve(home, "eval", "calibrate", "--kb", "cal", "--data", str(data), "--json").stdout)
    assert calibrated["reranker"] == "embedding" and calibrated["stored"] is True
    profile = json.loads(sieve(home, "profile", "show", "--kb", "cal", "--json").stdout)
    assert profile["relevance_threshold"] == calibrated["limits"]["min_relevance"]
    assert 0.5 < profile["relevance_threshold"] < 1.0  # on the cosine's scale


# ---- rewrite ---------------------------------------------------------------------------------

DIALOGS = [
    Dialog("1", ["苹果公司是做什么的", "苹果公司设计和销售消费电子产品"], "它的总部在哪里", "苹果公司的总部在哪里"),
    Dialog("2", ["What does Apple Inc. do?", "It designs consumer electronics."], "Where is its headquarters?",
           "Where is Apple Inc.'s headquarters?"),
]


def test_character_metrics():
    assert char_f1("苹果公司的总部", "苹果公司的总部") == rouge_l("abc", "abc") == 1.0
    assert char_f1("ab", "ba") == 1.0 and rouge_l("ab", "ba") == 0.5
    assert char_f1("", "abc") == rouge_l("xyz", "abc") == 0.0


async def test_rewrite_runs_the_deterministic_and_the_llm_rewriter():
    llm = ToolCallingFake(responses=[call("RewriteDecision", query="苹果公司的总部在哪里"),
                                     call("RewriteDecision", query="Where is Apple Inc.'s headquarters?")])
    reports = {r.name: r for r in await evaluate_rewrite(DIALOGS, llm)}
    assert reports["unchanged"].metrics["exact"] == 0.0
    assert reports["deterministic"].metrics["exact"] >= 0.5  # "它的总部在哪里" resolves to 苹果公司的总部在哪里
    assert reports["llm"].metrics == {"exact": 1.0, "char_f1": 1.0, "rouge_l": 1.0} and reports["llm"].degraded == 0


async def test_a_failing_llm_rewriter_falls_back_and_is_counted():
    llm = ToolCallingFake(responses=[AIMessage("no tool call"), AIMessage("no tool call")])
    reports = {r.name: r for r in await evaluate_rewrite(DIALOGS, llm)}
    assert reports["llm"].degraded == 2 and reports["llm"].metrics == reports["deterministic"].metrics


# ---- nl2sql ----------------------------------------------------------------------------------

@pytest.fixture
def restaurants(tmp_path) -> Path:
    db = sqlite3.connect(tmp_path / "restaurants.sqlite")
    db.executescript("""CREATE TABLE RESTAURANT (ID INTEGER, NAME TEXT, CITY TEXT);
        INSERT INTO RESTAURANT VALUES (1, 'jing', 'sf'), (2, 'luna', 'sf'), (3, 'kiko', 'la');""")
    db.commit()
    db.close()
    return tmp_path


QUESTIONS = [
    Question("how many restaurants in sf?", 'SELECT COUNT(*) FROM RESTAURANT WHERE CITY = "sf";'),
    Question("names in la?", "SELECT NAME FROM RESTAURANT WHERE CITY = 'la'"),
    Question("all names?", "SELECT NAME FROM RESTAURANT"),
]


def test_gold_sql_passes_the_guard_with_identical_rows(restaurants):
    report = guard_pass_rate(restaurants, QUESTIONS)
    assert (report.passed, report.questions, report.accuracy) == (3, 3, 1.0)


async def test_execution_accuracy_compares_rows_and_counts_why_others_fail(restaurants):
    llm = ToolCallingFake(responses=[
        call("SQLAnswer", sql="SELECT count(ID) FROM RESTAURANT WHERE CITY = 'sf'"),  # other SQL, same rows
        call("SQLAnswer", sql="SELECT NAME FROM RESTAURANT WHERE CITY = 'sf'"),  # wrong rows
        call("SQLAnswer", sql="DELETE FROM RESTAURANT"),  # the guard refuses it
    ])
    report = await execution_accuracy(restaurants, QUESTIONS, llm)
    assert (report.passed, report.accuracy) == (1, 0.3333)
    assert report.failures == {"wrong_rows": 1, "rejected_by_guard": 1}


# ---- judge -----------------------------------------------------------------------------------

def test_average_precision_rewards_relevant_passages_ranked_first():
    assert average_precision([True, False, False]) == 1.0
    assert average_precision([False, False, True]) == pytest.approx(1 / 3)
    assert average_precision([False, False]) == 0.0


async def test_the_judge_scores_answers_counts_refusals_and_survives_its_own_failures():
    answers = {
        "who founded Apple?": Answered("Steve Jobs founded Apple [1].", False, ["Apple was founded by Jobs.", "Tea."]),
        "capital of Mars?": Answered("The knowledge base does not say.", True, ["Tea.", "Marathons."]),
        "what is tea?": Answered("A drink [1].", False, ["Tea is a drink."]),
    }

    async def answer(question: str) -> Answered:
        return answers[question]

    llm = ToolCallingFake(responses=[
        call("ContextVerdict", relevant=[1]), call("AnswerVerdict", faithfulness=1.0, answer_relevance=0.8),
        call("ContextVerdict", relevant=[]),  # a refusal: context judged, no answer verdict asked
        AIMessage("I refuse to use tools"),  # the judge fails on the third question
    ])
    report = await evaluate_judge(list(answers), answer, llm)
    assert (report.questions, report.judged, report.refused, report.failed) == (3, 2, 1, 1)
    assert report.metrics == {"faithfulness": 1.0, "answer_relevance": 0.8, "context_precision": 0.5}
    assert report.per_question[2] == {"question": "what is tea?", "error": "llm_error"}
