"""Background ingest jobs, run one at a time: the embedded engines have a single writer.

Jobs live in memory (the last `keep` of them): documents themselves are crash-safe through the
ingest journal, so a restart loses only the job records, never half a document.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

from sieve.api.metrics import Metrics
from sieve.ingest.pipeline import IngestReport

log = logging.getLogger(__name__)
T = TypeVar("T")
JobKind = Literal["ingest", "reindex"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class JobFailed(Exception):
    """A job that cannot do its work; the message is what the job's status shows."""


@dataclass
class Job:
    id: str
    tenant: str
    kb: str
    kind: JobKind
    filename: str
    work: Callable[[], IngestReport] = field(repr=False)
    status: JobStatus = "queued"
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    report: dict[str, Any] | None = None


class JobQueue:
    def __init__(self, metrics: Metrics, keep: int = 1000):
        self.metrics = metrics
        self.keep = keep
        # every write to the engines holds this: jobs here, document deletes in their endpoint
        self.writer = asyncio.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="sieve-ingest-jobs")

    async def stop(self) -> None:
        """Lets the running job finish (its thread cannot be interrupted); queued ones fail."""
        self._closing = True
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                self._finish(job, "failed", error="the server shut down before the job ran")
        await self._queue.put(None)
        if self._worker is not None:
            await self._worker

    def submit(self, tenant: str, kb: str, kind: JobKind, filename: str, work: Callable[[], IngestReport]) -> Job:
        if self._closing:
            raise RuntimeError("the server is shutting down")
        job = Job(uuid.uuid4().hex, tenant, kb, kind, filename, work)
        self._jobs[job.id] = job
        self._forget_old()
        self._queue.put_nowait(job)
        return job

    def get(self, tenant: str, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.tenant == tenant else None

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs a blocking write to the engines in a thread, after any write in progress."""
        async with self.writer:
            return await asyncio.to_thread(fn, *args)

    async def _run(self) -> None:
        while (job := await self._queue.get()) is not None:
            job.status, job.started_at = "running", _now()
            try:
                report = await self.write(job.work)
            except JobFailed as exc:
                self._finish(job, "failed", error=str(exc))
            except Exception as exc:  # a job must never take the worker down with it
                log.exception("ingest job %s failed", job.id)
                self._finish(job, "failed", error=f"internal error: {exc}")
            else:
                error = "; ".join(message for _, message in report.failed) or None
                self._finish(job, "failed" if error else "succeeded", error=error, report=report.as_dict())

    def _finish(self, job: Job, status: JobStatus, *, error: str | None = None,
                report: dict[str, Any] | None = None) -> None:
        job.status, job.error, job.report, job.finished_at = status, error, report, _now()
        self.metrics.jobs.labels(job.kind, status).inc()

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.finished_at is not None]
        for job_id in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job_id]
