"""Prometheus metrics of one app: requests, runs by outcome, per-node latency, degradations, jobs.

Each app has its own registry, so several apps in one process (tests, benchmarks) never collide.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# node latencies span a 1 ms rule decision to a multi-second LLM answer
_NODE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sieve_http_requests", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.runs = Counter(
            "sieve_runs", "Graph runs by the route taken and how they ended.",
            ["route", "outcome"], registry=self.registry,
        )
        self.node_seconds = Histogram(
            "sieve_node_seconds", "Wall time of each graph node per run.",
            ["node"], buckets=_NODE_BUCKETS, registry=self.registry,
        )
        self.degraded = Counter(
            "sieve_degraded", "Degradations reported by runs (dense_timeout, llm_error ...).",
            ["flag"], registry=self.registry,
        )
        self.jobs = Counter("sieve_ingest_jobs", "Finished ingest jobs by status.", ["kind", "status"],
                            registry=self.registry)

    def observe_run(self, done: dict[str, Any]) -> None:
        """Records a finished run from its `done` event."""
        self.runs.labels(done.get("route", "kb"), "refused" if done.get("refused") else "answered").inc()
        for node, ms in done.get("timings_ms", {}).items():
            self.node_seconds.labels(node).observe(ms / 1000)
        for flag in done.get("degraded", []):
            self.degraded.labels(flag).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestCounter:
    """ASGI middleware counting requests by route template (not raw path: ids would explode labels).

    Pure ASGI rather than BaseHTTPMiddleware, which would buffer streams and hide client disconnects.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
