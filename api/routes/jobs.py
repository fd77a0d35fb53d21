"""`GET /v1/jobs/{id}`: the status of an ingest, re-index or graph-build job of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from sieve.api.deps import StateDep, WriterDep
from sieve.api.job_queue import Job
from sieve.api.schemas import JobPublic

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def accepted(job: Job, response: Response) -> JobPublic:
    """The 202 body of an endpoint that queued `job`, with where to poll it."""
    response.headers["Location"] = f"/v1/jobs/{job.record.id}"
    return JobPublic.of(job)


@router.get("/{job_id}")
async def get_job(job_id: str, state: StateDep, tenant: WriterDep) -> JobPublic:
    job = await state.jobs.get(tenant, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id!r} does not exist")
    return JobPublic.of(job)
