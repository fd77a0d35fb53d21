"""The CLI's way into a home that `sieve serve` owns.

The embedded engines (tantivy, Qdrant Edge) have one owner, so while a server runs on a home the
CLI's `ingest`, `search`, `ask`, `research`, `chat` and `graph build` go through its API instead of opening
them; `server.json` says where it listens (`api/server_record.py`). A key comes from `SIEVE_API_KEY`
unless the server runs with `--dev`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from sieve.api.server_record import ServerRecord
from sieve.errors import SieveError


class ServerError(SieveError, RuntimeError):
    """What the server said was wrong (its error message), or that it could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ServedHome:
    def __init__(self, record: ServerRecord, api_key: str | None, timeout_s: float = 300.0):
        if record.auth and not api_key:
            raise ServerError(f"this home is served at {record.url} (pid {record.pid}): set SIEVE_API_KEY to one of "
                              "its keys (`sieve keys create`), or stop the server")
        self.url = record.url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=record.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> ServedHome:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"the server at {self.url} did not answer: {exc}") from exc
        self._raise_for_error(response)
        return response.json() if response.content else None

    def _raise_for_error(self, response: httpx.Response) -> None:
        if response.is_error:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise ServerError(f"{message} (server at {self.url}, HTTP {response.status_code})", response.status_code)

    def get_kb(self, kb: str) -> dict[str, Any]:
        """The knowledge base's record; `ServerError` (404) when the key's tenant has none by that name."""
        return self._call("GET", f"/v1/knowledge-bases/{kb}")

    def stream_turn(self, kb: str, question: str, thread_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """One turn of a conversation the server keeps (`POST /v1/agent/stream`): `(event, data)` as they
        arrive, ending with `done`; an `error` event is raised as `ServerError`."""
        body = {"question": question, "kb": kb, "thread_id": thread_id}
        try:
            with self._client.stream("POST", "/v1/agent/stream", json=body) as response:
                if response.is_error:
                    response.read()
                    self._raise_for_error(response)
                event, data = "message", []
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif not line and data:  # a blank line ends the event; comments (pings) carry no data
                        payload = json.loads("\n".join(data))
                        if event == "error":
                            raise ServerError(f"{payload['message']} (server at {self.url})")
                        yield event, payload
                        event, data = "message", []
        except httpx.HTTPError as exc:
            raise ServerError(f"the server at {self.url} did not answer: {exc}") from exc

    def search(self, kb: str, query: str, k: int) -> dict[str, Any]:
        """`{"hits", "degraded"}` under the knowledge base's profile."""
        return self._call("POST", f"/v1/knowledge-bases/{kb}/search", json={"query": query, "k": k})

    def ask(self, kb: str, question: str, thread_id: str | None) -> dict[str, Any]:
        """One turn, shaped as `sieve ask --json` prints it."""
        return self._call("POST", "/v1/tools/ask/invoke", json={"question": question, "kb": kb, "thread_id": thread_id})

    def research(self, kb: str, question: str) -> dict[str, Any]:
        """Deep research, shaped as `sieve research --json` prints it."""
        return self._call("POST", "/v1/tools/research_knowledge_base/invoke", json={"question": question, "kb": kb})

    def document_acl(self, kb: str, doc_id: str, acl: Sequence[str] | None = None) -> list[str]:
        """A document's access list, replaced first when `acl` is given (a tenant-wide key only)."""
        path = f"/v1/knowledge-bases/{kb}/documents/{doc_id}/acl"
        body = self._call("GET", path) if acl is None else self._call("PUT", path, json={"acl": list(acl)})
        return body["acl"]

    def ensure_kb(self, kb: str) -> None:
        try:
            self._call("POST", "/v1/knowledge-bases", json={"name": kb})
        except ServerError as exc:
            if exc.status != 409:  # 409: it exists already
                raise

    def ingest(self, kb: str, path: Path, metadata: dict[str, Any], poll_s: float = 0.2) -> dict[str, Any]:
        """Uploads one file as a job and waits for it; returns the job's report (`IngestReport.as_dict`)."""
        data = {"metadata": json.dumps(metadata, ensure_ascii=False)} if metadata else None
        with path.open("rb") as fh:
            job = self._call("POST", f"/v1/knowledge-bases/{kb}/documents", files={"file": (path.name, fh)}, data=data)
        job = self._wait(job, poll_s)
        if job["report"] is None:
            return {"added": 0, "replaced": 0, "unchanged": 0, "failed": [{"source": str(path), "error": job["error"]}],
                    "chunks": 0, "embedded": 0, "doc_ids": []}
        return job["report"]

    def build_graph(self, kb: str, rebuild: bool, on_progress: Callable[[int, int], None] | None = None,
                    poll_s: float = 0.5) -> dict[str, Any]:
        """Runs a graph build as a job and waits for it; returns its report (`GraphBuildReport.as_dict`).
        A job that failed before its report (graph_extraction off ...) raises `ServerError`."""
        job = self._call("POST", f"/v1/knowledge-bases/{kb}/graph/build", json={"rebuild": rebuild})
        job = self._wait(job, poll_s, on_progress)
        if job["report"] is None:
            raise ServerError(f"{job['error']} (server at {self.url})")
        return job["report"]

    def _wait(self, job: dict[str, Any], poll_s: float,
              on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Polls a job until it finishes; `on_progress(done, total)` whenever it reports progress."""
        while job["status"] in ("queued", "running"):
            time.sleep(poll_s)
            job = self._call("GET", f"/v1/jobs/{job['id']}")
            if on_progress is not None and job.get("progress"):
                on_progress(job["progress"]["done"], job["progress"]["total"])
        return job
