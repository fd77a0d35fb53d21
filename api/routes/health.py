"""Liveness, readiness (stores answer; which models fail) and Prometheus metrics; no key needed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from sieve.api.deps import StateDep
from sieve.api.schemas import HealthPublic, ReadinessPublic
from sieve.api.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
FAILING = ("error", "timeout")  # model states that put questions on the degradation ladder


def _checks(state: AppState) -> dict[str, bool | None]:
    """Each store answers (True) or not (False); None: the vector index waits for the embedder."""

    def database() -> bool:
        with state.stack.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1

    def vectors() -> bool | None:
        # its folder is named by the embedder's width: while the embedder has never answered, there
        # is nothing to open yet, and the embedder's own state says why
        if not state.stack.is_open("vectors") and state.retriever.embedder.health()["state"] in FAILING:
            return None
        return state.stack.vectors.health()

    checks: dict[str, bool | None] = {}
    for name, probe in (("metadata_db", database), ("text_index", lambda: state.stack.text.health()),
                        ("vector_index", vectors)):
        try:
            result = probe()
            checks[name] = None if result is None else bool(result)
        except Exception:  # a store that raises is simply not ready
            log.warning("readiness check of %s failed", name, exc_info=True)
            checks[name] = False
    return checks


def _graphs(state: AppState) -> dict[str, int | bool]:
    """The embedded vector shards' points, how many an HNSW graph indexes (the rest are searched exactly),
    and whether a build runs now."""
    totals: dict[str, int | bool] = {"points": 0, "indexed": 0, "building": False}
    for index in state.stack.open_edge_vectors():
        shard = index.index_state()
        totals = {"points": totals["points"] + shard["points"], "indexed": totals["indexed"] + shard["indexed"],
                  "building": bool(totals["building"] or shard["building"])}
    return totals


@router.get("/healthz")
async def healthz() -> HealthPublic:
    """The process serves requests."""
    return HealthPublic(status="ok")


@router.get("/readyz", response_model=ReadinessPublic, responses={503: {"model": ReadinessPublic}})
async def readyz(state: StateDep) -> JSONResponse:
    """`ready`: stores and models answer. `degraded` (still 200): the stores answer and questions are
    served on the degradation ladder because a model fails. `unavailable` (503): a store does not answer.
    The embedded vector index also says how many of its points an HNSW graph indexes and whether a build
    runs (`components.vector_index.hnsw`)."""
    checks = await asyncio.to_thread(_checks, state)
    models = state.models_health()
    components: dict[str, dict[str, Any]] = {
        name: {"state": {True: "ok", False: "unavailable", None: "waiting_for_embedder"}[ok]}
        for name, ok in checks.items()
    }
    if checks["vector_index"]:
        components["vector_index"]["hnsw"] = await asyncio.to_thread(_graphs, state)
    components |= models
    if any(ok is False for ok in checks.values()):
        status = "unavailable"
    elif any(c["state"] in FAILING for c in models.values()) or None in checks.values():
        status = "degraded"
    else:
        status = "ready"
    body = {"status": status, "checks": {name: bool(ok) for name, ok in checks.items()}, "components": components}
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(state: StateDep) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
