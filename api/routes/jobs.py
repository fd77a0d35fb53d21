"""`GET /v1/jobs/{id}`: the status of an ingest, re-index or graph-build job of the caller's tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response

from sieve.api.deps import StateDep, WriterDep
from sieve.api.job_queue import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "kb": job.kb, "filename": job.filename, "status": job.status,
        "error": job.error, "report": job.report,
        "progress": None if job.progress is None else {"done": job.progress.done, "total": job.progress.total},
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def accepted(job: Job, response: Response) -> dict[str, Any]:
    """The 202 body of an endpoint that queued `job`, with where to poll it."""
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_json(job)


@router.get("/{job_id}")
async def get_job(job_id: str, state: StateDep, tenant: WriterDep) -> dict[str, Any]:
    job = await state.jobs.get(tenant, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id!r} does not exist")
    return job_json(job)
