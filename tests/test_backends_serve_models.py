"""`sieve serve-models`: the vLLM commands for the three model roles and the settings that use them.

No GPU or vLLM here, so `--run` is checked with a stand-in `vllm` on PATH that records how it was started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHAT_FLAGS = ["--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--guided-decoding-backend", "xgrammar"]


def serve_models(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sieve.cli", "serve-models", *args],
        env=env or os.environ.copy(), capture_output=True, text=True, timeout=120,
    )


def contains(argv: list[str], flags: list[str]) -> bool:
    return any(argv[i : i + len(flags)] == flags for i in range(len(argv)))


def test_plan_names_each_role_and_the_settings_that_point_at_it():
    plan = json.loads(serve_models("--host", "gpu-1", "--port", "9000", "--json").stdout)
    chat, embed, rerank = plan["commands"]
    assert [c["role"] for c in plan["commands"]] == ["chat", "embed", "rerank"]
    assert chat["argv"][:3] == ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"] and contains(chat["argv"], CHAT_FLAGS)
    assert contains(embed["argv"], ["--task", "embed"]) and contains(rerank["argv"], ["--task", "score"])
    assert [c["url"] for c in plan["commands"]] == [f"http://gpu-1:{p}/v1" for p in (9000, 9001, 9002)]
    assert plan["settings"] | {
        "SIEVE_LLM_BASE_URL": "http://gpu-1:9000/v1",
        "SIEVE_LLM_MODEL": "Qwen2.5-7B-Instruct",
        "SIEVE_EMBEDDER": "openai",
        "SIEVE_EMBEDDER_BASE_URL": "http://gpu-1:9001/v1",
        "SIEVE_EMBEDDER_MODEL": "bge-m3",
        "SIEVE_RERANKER_BASE_URL": "http://gpu-1:9002/v1",
        "SIEVE_RERANKER_MODEL": "bge-reranker-v2-m3",
    } == plan["settings"]


def test_printed_commands_and_settings_are_ready_to_paste(tmp_path):
    printed = serve_models("--chat-model", str(tmp_path / "my-chat"), "--api-key", "k").stdout.splitlines()
    commands = [line for line in printed if line.startswith("vllm serve ")]
    assert len(commands) == 3 and all("--api-key k" in c for c in commands)
    assert f"vllm serve {tmp_path / 'my-chat'} --served-model-name my-chat" in commands[0]
    assert "SIEVE_LLM_MODEL=my-chat" in printed and "SIEVE_LLM_API_KEY=k" in printed


def test_run_starts_the_three_servers_and_stops_them_together(tmp_path):
    log = tmp_path / "started"
    fake = tmp_path / "bin" / "vllm"
    fake.parent.mkdir()
    # records its arguments; the reranker "fails" after a moment, the others would run until stopped
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\ncase "$*" in *"--task score"*) sleep 1; exit 3;; esac\nexec sleep 60\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    done = serve_models("--run", env=env)
    assert done.returncode == 3
    printed = [line.removeprefix("vllm ") for line in done.stdout.splitlines() if line.startswith("vllm serve ")]
    assert sorted(log.read_text().splitlines()) == sorted(printed)


def test_run_without_vllm_says_how_to_get_it(tmp_path):
    done = serve_models("--run", env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 1 and "pip install 'sieve-rag[vllm]'" in done.stderr
