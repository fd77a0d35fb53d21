"""Background jobs (ingest, re-index, graph builds), run one at a time: the embedded engines have a single writer.

Each job's record is kept in the metadata DB (`jobs`), so `GET /v1/jobs/{id}` answers after a
restart too. The work itself (a staged upload) does not survive one: jobs a stopped server left
queued or running are marked failed when the next one starts. Documents are crash-safe through the
ingest journal, so such a job never leaves half a document.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from sieve.api.metrics import Metrics
from sieve.errors import Unavailable
from sieve.ingest.report import Failures
from sieve.stores import crud
from sieve.stores.metadata import JobKind, JobRecord, JobStatus

log = logging.getLogger(__name__)
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


class JobFailed(Exception):
    """A job that cannot do its work; the message is what the job's status shows."""


class JobReport(Protocol):
    """What a job's work returns (`IngestReport`, `GraphBuildReport`): any failure fails the job."""

    failed: Failures

    def as_dict(self) -> dict[str, Any]: ...


@dataclass
class JobProgress:
    """How far a running job is, for jobs whose work reports it (`done` of `total` items)."""

    done: int = 0
    total: int = 0

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total


@dataclass
class Job:
    """A job: its `jobs` row, whose columns are read and set directly (the row belongs to no session: each
    save merges it), and what only the server running it has."""

    record: JobRecord
    work: Callable[[], JobReport] | None = field(default=None, repr=False)  # None once finished or reloaded
    progress: JobProgress | None = None  # a reloaded job has none


class JobQueue:
    def __init__(self, metrics: Metrics, sessions: sessionmaker[Session], home: str, keep: int = 1000,
                 succeeded: Callable[[], None] | None = None):
        self.metrics = metrics
        self.succeeded = succeeded  # told after each job that succeeded (the HNSW builds wait for a quiet spell)
        self.sessions = sessions
        self.home = home
        self.keep = keep  # job records also kept in memory (the newest ones)
        # every write to the engines holds this: jobs here, document deletes in their endpoint
        self.writer = asyncio.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> int:
        """Starts the worker; returns how many jobs a stopped server left unfinished (now failed)."""
        interrupted = await asyncio.to_thread(self._fail_interrupted)
        self._worker = asyncio.create_task(self._run(), name="sieve-ingest-jobs")
        return interrupted

    async def stop(self) -> None:
        """Lets the running job finish (its thread cannot be interrupted); queued ones fail."""
        self._closing = True
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                await self._finish(job, JobStatus.FAILED, error="the server shut down before the job ran")
        await self._queue.put(None)
        if self._worker is not None:
            await self._worker

    async def submit(self, tenant: str, kb: str, kind: JobKind, filename: str,
                     work: Callable[[], JobReport], progress: JobProgress | None = None) -> Job:
        if self._closing:
            raise Unavailable("the server is shutting down")
        record = JobRecord(id=uuid.uuid4().hex, tenant_id=tenant, home=self.home, kb=kb, kind=kind, filename=filename,
                           status=JobStatus.QUEUED, created_at=_now())
        job = Job(record, work, progress)
        await self._save(job)  # recorded before it can run: a crash from here on leaves a trace
        self._jobs[record.id] = job
        self._forget_old()
        self._queue.put_nowait(job)
        return job

    async def get(self, tenant: str, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None:
            return job if job.record.tenant_id == tenant else None
        # older than the ones in memory, or from before a restart
        row = await asyncio.to_thread(self._load, tenant, job_id)
        return None if row is None else Job(row)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs a blocking write to the engines in a thread, after any write in progress."""
        async with self.writer:
            return await asyncio.to_thread(fn, *args)

    async def _run(self) -> None:
        while (job := await self._queue.get()) is not None:
            job.record.status, job.record.started_at = JobStatus.RUNNING, _now()
            try:
                await self._save(job)
                assert job.work is not None
                report = await self.write(job.work)
            except JobFailed as exc:
                await self._finish(job, JobStatus.FAILED, error=str(exc))
            except Exception as exc:  # a job must never take the worker down with it
                log.exception("ingest job %s failed", job.record.id)
                # its text can name server paths: the log has it, the job says what kind of failure
                await self._finish(job, JobStatus.FAILED, error=f"internal error ({type(exc).__name__}); "
                                                        "the server log has the details")
            else:
                error = "; ".join(message for _, message in report.failed) or None
                await self._finish(job, JobStatus.FAILED if error else JobStatus.SUCCEEDED, error=error, report=report.as_dict())
                if self.succeeded is not None:
                    self.succeeded()

    async def _finish(self, job: Job, status: JobStatus, *, error: str | None = None,
                      report: dict[str, Any] | None = None) -> None:
        row = job.record
        row.status, row.error, row.report, row.finished_at, job.work = status, error, report, _now(), None
        self.metrics.jobs.labels(row.kind, status).inc()
        try:
            await self._save(job)
        except Exception:  # the in-memory record still answers; a lost row must not stop the worker
            log.exception("could not record job %s", row.id)

    async def _save(self, job: Job) -> None:
        def save() -> None:
            with self.sessions.begin() as session:
                crud.save_job(session, job.record)

        await asyncio.to_thread(save)

    def _load(self, tenant: str, job_id: str) -> JobRecord | None:
        with self.sessions() as session:
            return crud.get_job(session, tenant, job_id)

    def _fail_interrupted(self) -> int:
        with self.sessions.begin() as session:
            return crud.fail_unfinished_jobs(
                session, self.home, "the server stopped before the job finished; upload the file again (or build the "
                "graph again)", _now())

    def _forget_old(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.record.finished_at is not None]
        for job_id in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job_id]
