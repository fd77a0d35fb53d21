"""A GGUF chat model run by llama.cpp inside this process (`SIEVE_LLM_PROVIDER=llamacpp`).

The graph keeps its one LLM code path: llama.cpp's own OpenAI-compatible server (xllamacpp) runs in
this process on a loopback port, and the usual ChatOpenAI client talks to it. Structured decisions ask
for `response_format: json_schema`, which llama.cpp compiles into a grammar, so even a small model
returns JSON of the schema's shape (a reply cut off at max tokens can still break it: the caller's
deterministic fallback covers that).

One server per model and settings per process: started on first use (the app's lifespan builds the
graph context, a CLI command its LLM) and stopped when the process exits.
"""

from __future__ import annotations

import atexit
import os

# libgomp reads this once, when first loaded (by xllamacpp, unless torch came first): idle OpenMP
# workers then sleep instead of spinning on cores the embedder, the engines and other processes need
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import secrets
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from sieve.errors import ConfigurationError
from sieve.settings import Settings


def default_threads() -> int:
    """Half the usable cores, at least one: llama.cpp decodes memory-bound, so SMT siblings add nothing,
    and on a small shared box one thread per model was measured faster than two (bench/bench_llm.py)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, usable // 2)


@dataclass(frozen=True)
class LocalModel:
    """What one running llama.cpp server is started with."""

    path: Path
    threads: int
    context: int
    max_tokens: int
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalModel:
        if settings.llm_model_path is None:
            raise ConfigurationError("SIEVE_LLM_PROVIDER=llamacpp needs SIEVE_LLM_MODEL_PATH (a GGUF chat model file)")
        return cls(path=settings.llm_model_path.expanduser().resolve(), threads=settings.llm_threads or default_threads(),
                   context=settings.llm_context, max_tokens=settings.llm_max_tokens)

    def check(self) -> None:
        """A clear error for a wrong path, before llama.cpp's generic one."""
        if not self.path.is_file():
            raise ConfigurationError(f"SIEVE_LLM_MODEL_PATH: GGUF model {self.path} does not exist")
        with self.path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ConfigurationError(f"SIEVE_LLM_MODEL_PATH: {self.path} is not a GGUF model file")

    @property
    def name(self) -> str:
        """The model name requests carry: the file name without `.gguf`."""
        return self.path.name.removesuffix(".gguf")


class LocalServer:
    """llama.cpp's HTTP server over one GGUF model, in this process until `close()`."""

    def __init__(self, model: LocalModel, api_key: str | None = None):
        model.check()
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(model.path)
        params.model_alias = {model.name}
        params.n_ctx = model.context
        params.n_predict = model.max_tokens  # a cap even for clients that send no max_tokens
        params.cpuparams.n_threads = model.threads
        params.cpuparams_batch.n_threads = model.threads
        params.hostnames = [model.host]
        params.port = model.port
        params.verbosity = -1  # errors reach the client as HTTP errors; the log would only repeat them
        params.api_keys = [api_key] if api_key else []
        self.api_key = api_key or "EMPTY"
        self.model = model
        self._server = xllamacpp.Server(params)  # loads the model; RuntimeError when llama.cpp cannot
        self.url: str = self._server.listening_address
        self.base_url = f"{self.url}/v1"

    def close(self) -> None:
        # the server stops (its loop joined, the model freed) when the object is deallocated
        self._server = None


_lock = threading.Lock()
_running: dict[LocalModel, LocalServer] = {}


def local_server(settings: Settings) -> LocalServer:
    """The process's server for the configured model, started on first use."""
    model = LocalModel.from_settings(settings)
    with _lock:
        if model not in _running:
            # a key known to this process only: other local users cannot borrow the model
            _running[model] = LocalServer(model, api_key=secrets.token_urlsafe(24))
        return _running[model]


@atexit.register
def close_all() -> None:
    with _lock:
        for server in _running.values():
            server.close()
        _running.clear()


def serve(model: LocalModel, api_key: str | None = None) -> int:
    """`sieve serve-models --local --run`: the server in the foreground until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = LocalServer(model, api_key)
    try:
        print(f"# serving {model.path} at {server.base_url}", flush=True)
        stop.wait()
    finally:
        server.close()
    return 0


def plan(path: Path, url: str | None = None, api_key: str | None = None) -> dict[str, str]:
    """The SIEVE_* settings that use the model: run inside each Sieve process, or (`url`) served by
    `sieve serve-models --local --run` to any number of them."""
    path = path.expanduser().resolve()
    if url is None:
        return {"SIEVE_LLM_PROVIDER": "llamacpp", "SIEVE_LLM_MODEL_PATH": str(path)}
    return {
        "SIEVE_LLM_BASE_URL": url,
        "SIEVE_LLM_MODEL": path.name.removesuffix(".gguf"),
        "SIEVE_LLM_API_KEY": api_key or "EMPTY",
        "SIEVE_LLM_STRUCTURED": "json_schema",
    }
