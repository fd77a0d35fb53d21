"""`select_documents` end to end on a real two-tenant metadata DB: deterministic mode, model mode, and its fallbacks."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableLambda
from nl2sql_fixtures import NOW, leaked, make_metadata_db
from postgres import DATABASES, fresh_database
from pydantic import Field
from sqlalchemy.orm import sessionmaker

from sieve.nl2sql import service
from sieve.nl2sql.executor import SQLExecutionError
from sieve.nl2sql.guard import SQLRejected
from sieve.nl2sql.schema import describe_schema, read_values
from sieve.nl2sql.service import SQLDraft, aselect_documents, check_sql, run_sql, select_documents

ARTICLE = "找一下张伟在2023年关于大模型训练方面的工作总结"


class ScriptedModel(BaseChatModel):
    """A chat model whose structured output is given by the test (or raises)."""

    reply: Any
    prompts: list[Any] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        def answer(messages: Any) -> Any:
            self.prompts.append(messages)
            if isinstance(self.reply, Exception):
                raise self.reply
            return self.reply

        return RunnableLambda(answer)


@pytest.fixture(scope="module", params=DATABASES)
def db(request, tmp_path_factory):
    return make_metadata_db(tmp_path_factory.mktemp("nl2sql-service"), fresh_database(request.param, request))


def test_article_example_narrows_to_zhang_weis_2023_documents(db):
    result = select_documents(ARTICLE, "t1", "kb-rd", db.engine, now=NOW)
    assert result.doc_ids == frozenset({"zw-2023-train", "zw-2023-q4"})
    assert not result.metadata_answer
    assert result.content_query == "大模型训练 工作总结"
    assert result.mode == "deterministic" and "\"tenant_id\" = 't1'" in (result.sql or "")


def test_pure_metadata_question_is_answered_from_the_table(db):
    result = select_documents("我上个月上传了哪些叫周报的文件", "t1", "kb-rd", db.engine, now=NOW)
    assert result.metadata_answer and result.content_query == ""
    assert result.doc_ids == frozenset({"ln-2024-weekly"})
    assert result.columns[:2] == ["id", "title"] and result.rows[0][1] == "周报 4月"


def test_english_metadata_question_across_knowledge_bases(db):
    result = select_documents("which files did Ann Lee upload in March", "t1", None, db.engine, now=NOW)
    assert result.metadata_answer and result.doc_ids == frozenset({"ann-2024-hr"})


def test_listing_all_documents_does_not_narrow_retrieval(db):
    result = select_documents("列出所有文档", "t1", "kb-rd", db.engine, now=NOW)
    assert result.metadata_answer and result.doc_ids is None
    assert {r[0] for r in result.rows} == {"zw-2023-train", "zw-2023-q4", "zw-2024-train", "ln-2023-eval", "ln-2024-weekly"}


def test_question_without_metadata_conditions_is_not_narrowed(db):
    result = select_documents("大模型训练的最佳实践是什么", "t1", "kb-rd", db.engine, now=NOW)
    assert result.sql is None and result.doc_ids is None and not result.metadata_answer
    assert result.content_query == "大模型训练的最佳实践是什么" and result.reason


def test_other_tenant_never_sees_the_callers_documents(db):
    result = select_documents(ARTICLE, "t2", None, db.engine, now=NOW)
    assert result.doc_ids == frozenset({"t2-zw-2023"})


def test_session_factory_is_accepted(db):
    result = select_documents(ARTICLE, "t1", "kb-rd", sessionmaker(db.engine), now=NOW)
    assert result.doc_ids == frozenset({"zw-2023-train", "zw-2023-q4"})


async def test_async_wrapper(db):
    result = await aselect_documents(ARTICLE, "t1", "kb-rd", db.engine, now=NOW)
    assert result.doc_ids == frozenset({"zw-2023-train", "zw-2023-q4"})


def test_model_sql_is_guarded_and_used(db):
    model = ScriptedModel(reply=SQLDraft(
        sql="SELECT id, title FROM documents WHERE owner = '张伟' AND created_at >= '2024-01-01'",
        metadata_answer=False,
        content_query="大模型训练 工作总结",
    ))
    result = select_documents("张伟今年关于大模型训练的工作总结", "t1", "kb-rd", db.engine, llm=model, now=NOW)
    assert result.mode == "llm" and result.doc_ids == frozenset({"zw-2024-train"})
    assert result.content_query == "大模型训练 工作总结"
    system_prompt = model.prompts[0][0].content
    assert "张伟" in system_prompt
    assert "tenant_id" not in system_prompt and "chunks" not in system_prompt


def test_model_cannot_widen_the_tenant_with_or_true(db):
    model = ScriptedModel(reply=SQLDraft(sql="SELECT id, title, owner FROM documents WHERE 1 = 1 OR 1 = 1", metadata_answer=True))
    result = select_documents("list everything", "t1", "kb-rd", db.engine, llm=model, now=NOW)
    assert result.mode == "llm" and leaked(result.rows) == []
    assert result.doc_ids == frozenset({"zw-2023-train", "zw-2023-q4", "zw-2024-train", "ln-2023-eval", "ln-2024-weekly"})


@pytest.mark.parametrize(
    "reply",
    [
        SQLDraft(sql="SELECT id FROM documents WHERE tenant_id = 't2'"),
        SQLDraft(sql="SELECT id FROM documents; DELETE FROM documents"),
        SQLDraft(sql="SELECT text FROM chunks"),
        SQLDraft(sql="SELECT title FROM documents", metadata_answer=False),  # no id: cannot narrow
        TimeoutError("model too slow"),
        {"sql": 42, "metadata_answer": "maybe"},
    ],
    ids=["other-tenant", "stacked", "chunks", "no-id", "model-error", "malformed"],
)
def test_any_model_failure_falls_back_to_slot_filling_and_says_why(db, reply):
    result = select_documents(ARTICLE, "t1", "kb-rd", db.engine, llm=ScriptedModel(reply=reply), now=NOW)
    assert result.mode == "deterministic"
    assert result.doc_ids == frozenset({"zw-2023-train", "zw-2023-q4"})
    assert result.reason.startswith("model SQL not used:")


def test_model_saying_no_condition_is_respected(db):
    model = ScriptedModel(reply=SQLDraft(sql=None, content_query="最佳实践"))
    result = select_documents("大模型训练的最佳实践", "t1", "kb-rd", db.engine, llm=model, now=NOW)
    assert result.mode == "llm" and result.doc_ids is None and result.content_query == "最佳实践"


def test_schema_description_lists_columns_types_meanings_and_values(db):
    text = describe_schema(read_values(db.engine, "t1"))
    assert "TABLE documents" in text and "TABLE knowledge_bases" in text
    assert "owner VARCHAR(200) -- owner or author of the document; e.g. 'Ann Lee', '张伟', '李娜'" in text
    assert "department (e.g. 'R&D', 'HR')" in text and "研发部" in text
    for hidden in ("tenant_id", "status", "content_hash", "profile", "chunks", "SECRET"):
        assert hidden not in text


def test_cli_helpers_check_and_run(db):
    assert "\"tenant_id\" = 't1'" in check_sql("SELECT title FROM documents", "t1", "kb-rd")
    with pytest.raises(SQLRejected, match="chunks"):
        check_sql("SELECT text FROM chunks", "t1")
    guarded, result = run_sql("SELECT id FROM documents ORDER BY id", "t1", db.engine, "kb-hr")
    assert result.rows == [("ann-2024-hr",)] and guarded.endswith("LIMIT 200")


def test_database_failure_degrades_to_not_narrowing(db, monkeypatch):
    def too_slow(*args, **kwargs):
        raise SQLExecutionError("statement timed out after 2s")

    monkeypatch.setattr(service, "execute", too_slow)
    result = select_documents(ARTICLE, "t1", "kb-rd", db.engine, now=NOW)
    assert result.doc_ids is None and result.content_query == ARTICLE and "timed out" in result.reason
