"""`sieve serve-models`: the `vllm serve` commands for Sieve's three model roles, and the SIEVE_*
settings that point Sieve at them.

The flags are vLLM 0.8-0.10's (`--task`, `--guided-decoding-backend`; the `vllm` extra pins that range):
the chat model gets tool calling and guided decoding, which the graph's `with_structured_output` calls
use; the embedder runs as `--task embed` behind `/v1/embeddings`; the reranker as `--task score`
behind `/v1/score` and `/v1/rerank`. All three fit one GPU by default (memory shares below); give each
its own GPU with CUDA_VISIBLE_DEVICES and a larger share.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from sieve.errors import NotFound

DEFAULT_CHAT = "Qwen/Qwen2.5-7B-Instruct"
DEFAULT_EMBED = "BAAI/bge-m3"
DEFAULT_RERANK = "BAAI/bge-reranker-v2-m3"


@dataclass(frozen=True)
class ServeCommand:
    role: str  # chat | embed | rerank
    model: str  # hub id or local folder, as vLLM takes it
    served_name: str  # the name requests use (and the SIEVE_*_MODEL setting)
    url: str  # OpenAI-compatible base URL, ending in /v1
    argv: list[str] = field(default_factory=list)

    def shell(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class ServePlan:
    commands: list[ServeCommand]
    settings: dict[str, str]  # SIEVE_* environment for every Sieve worker

    def as_dict(self) -> dict[str, Any]:
        return {
            "commands": [{"role": c.role, "model": c.model, "url": c.url, "argv": c.argv} for c in self.commands],
            "settings": self.settings,
        }


def served_name(model: str) -> str:
    """`Qwen/Qwen2.5-7B-Instruct` and `/models/Qwen2.5-7B-Instruct/` both serve as `Qwen2.5-7B-Instruct`."""
    return PurePath(model.rstrip("/")).name


def plan(
    chat_model: str = DEFAULT_CHAT,
    embed_model: str = DEFAULT_EMBED,
    rerank_model: str = DEFAULT_RERANK,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
) -> ServePlan:
    """Chat on `port`, embeddings on `port + 1`, reranking on `port + 2`."""
    roles = [
        # Qwen2.5 and most tool-tuned open models emit Hermes-style <tool_call> blocks
        ("chat", chat_model, ["--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                              "--guided-decoding-backend", "xgrammar", "--gpu-memory-utilization", "0.70"]),
        ("embed", embed_model, ["--task", "embed", "--gpu-memory-utilization", "0.12"]),
        ("rerank", rerank_model, ["--task", "score", "--gpu-memory-utilization", "0.12"]),
    ]
    commands = []
    for offset, (role, model, flags) in enumerate(roles):
        name = served_name(model)
        argv = ["vllm", "serve", model, "--served-model-name", name, "--host", host, "--port", str(port + offset), *flags]
        if api_key:
            argv += ["--api-key", api_key]
        commands.append(ServeCommand(role, model, name, f"http://{host}:{port + offset}/v1", argv))
    chat, embed, rerank = commands
    key = api_key or "EMPTY"
    settings = {
        "SIEVE_LLM_BASE_URL": chat.url,
        "SIEVE_LLM_MODEL": chat.served_name,
        "SIEVE_LLM_API_KEY": key,
        "SIEVE_EMBEDDER": "openai",
        "SIEVE_EMBEDDER_BASE_URL": embed.url,
        "SIEVE_EMBEDDER_MODEL": embed.served_name,
        "SIEVE_EMBEDDER_API_KEY": key,
        # knowledge bases use it when their retrieval profile says reranker=score_api (or rerank_api)
        "SIEVE_RERANKER_BASE_URL": rerank.url,
        "SIEVE_RERANKER_MODEL": rerank.served_name,
        "SIEVE_RERANKER_API_KEY": key,
    }
    return ServePlan(commands, settings)


def run(serve: ServePlan) -> int:
    """Start every command and wait. When one exits the others are stopped and its exit code is
    returned; Ctrl-C stops them all and returns 0."""
    if shutil.which("vllm") is None:
        raise NotFound("`vllm` is not on PATH: on a GPU machine, pip install 'sieve-rag[vllm]'")
    procs = [subprocess.Popen(c.argv) for c in serve.commands]
    first_exit = 0
    try:
        while (ended := next((p for p in procs if p.poll() is not None), None)) is None:
            time.sleep(0.2)
        first_exit = ended.returncode
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # vLLM shuts down cleanly on SIGINT
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    return first_exit
