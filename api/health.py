"""Liveness, readiness (every store answers) and Prometheus metrics; no key needed."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from sieve.api.deps import StateDep
from sieve.api.state import AppState

router = APIRouter(tags=["health"])


def _checks(state: AppState) -> dict[str, bool]:
    def database() -> bool:
        with state.stack.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1

    checks = {}
    for name, probe in (("metadata_db", database), ("text_index", state.stack.text.health),
                        ("vector_index", state.stack.vectors.health)):
        try:
            checks[name] = bool(probe())
        except Exception:  # a store that raises is simply not ready
            checks[name] = False
    return checks


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process serves requests."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """Every store answers; 503 with the failing ones otherwise."""
    checks = await asyncio.to_thread(_checks, state)
    ready = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
