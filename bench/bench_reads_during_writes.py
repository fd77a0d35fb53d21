"""Reads during writes: search latency while documents are uploaded through `sieve serve`, and while the
server then builds the HNSW index.

`sieve serve` runs in its own process on a copy of a base home (a `--base`-chunk synthetic zh/en corpus
built once with the server's embedder, HNSW built, kept in `--home`). Searches (`POST .../search`, bm25 +
dense fused, distinct queries, each embedded) go out at a fixed rate, open loop, first with the server
idle, then while `--docs` synthetic documents are uploaded (`--uploaders` at a time) through the ingest
API, then while the server builds the HNSW index of the new vectors, then after it. Prints p50/p95 per
phase, the ratio of each to the idle p95 (target during ingest: <= 2x), ingest throughput and errors.
`--vs ENV=VALUE` runs everything again on a server with that setting (a same-run comparison).

    flock /tmp/bench.lock .venv/bin/python bench/bench_reads_during_writes.py --home DIR
        [--base 20000] [--docs 10000] [--rate 10] [--idle-s 20] [--uploaders 4] [--vs SIEVE_X=Y] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query_latency import corpus
from bench_server import serving
from synthetic import queries, sentence

from sieve.evals.metrics import percentile
from sieve.settings import Settings
from sieve.stores.stack import Stack

KB = "latency"  # bench_query_latency's corpus: tenant "bench", knowledge base "latency"
QUIET_S = 5  # the server builds HNSW this long after the last upload (its default is 30 s)


def base_home(home: Path, chunks: int) -> str:
    """The base corpus in `home`, embedded with the server's embedder and its HNSW built (once, reused)."""
    with Stack(Settings(home=home)) as stack:
        corpus(stack, chunks)
        optimize = getattr(stack.vectors, "optimize", None)
        if optimize is not None and stack.vectors.index_state()["indexed"] < chunks:  # type: ignore[attr-defined]
            optimize()
        return f"{type(stack.embedder).__name__} ({stack.embedder.name})"


def document(i: int, seed: int) -> bytes:
    rng = random.Random(seed * 1_000_003 + i)
    return "\n\n".join(" ".join(sentence(rng) for _ in range(rng.randint(2, 4))) for _ in range(rng.randint(1, 3))).encode()


class Load:
    """Open-loop searches at a fixed rate; each latency is kept under the phase it was sent in."""

    def __init__(self, client: httpx.AsyncClient, rate: float):
        self.client, self.rate = client, rate
        self.phase = "idle"
        self.latencies: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()
        self.queries = iter(queries(1_000_000, seed=23))
        self._seen: set[str] = set()

    def _query(self) -> str:
        while (q := next(self.queries)) in self._seen:  # a repeated query would find its vector cached
            pass
        self._seen.add(q)
        return q

    async def _one(self, phase: str) -> None:
        started = time.perf_counter()
        try:
            response = await self.client.post(f"/v1/knowledge-bases/{KB}/search", json={"query": self._query(), "k": 10})
            if response.status_code != 200:
                self.errors[f"{phase}: HTTP {response.status_code}"] += 1
                return
        except httpx.HTTPError as exc:
            self.errors[f"{phase}: {type(exc).__name__}"] += 1
            return
        self.latencies.setdefault(phase, []).append((time.perf_counter() - started) * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        start, sent = time.perf_counter(), 0
        while not stop.is_set():
            task = asyncio.create_task(self._one(self.phase))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
            await asyncio.sleep(max(0.0, start + sent / self.rate - time.perf_counter()))
        await asyncio.gather(*tasks)


async def hnsw(client: httpx.AsyncClient) -> dict:
    return (await client.get("/readyz")).json()["components"]["vector_index"]["hnsw"]


async def upload_all(client: httpx.AsyncClient, docs: int, uploaders: int, seed: int) -> tuple[list[str], Counter[str]]:
    jobs: list[str] = []
    errors: Counter[str] = Counter()
    numbers = iter(range(docs))

    async def uploader() -> None:
        for i in numbers:
            files = {"file": (f"upload-{seed}-{i}.txt", document(i, seed))}
            try:
                response = await client.post(f"/v1/knowledge-bases/{KB}/documents", files=files)
            except httpx.HTTPError as exc:
                errors[f"upload: {type(exc).__name__}"] += 1
                continue
            if response.status_code != 202:
                errors[f"upload: HTTP {response.status_code}"] += 1
            else:
                jobs.append(response.json()["id"])

    await asyncio.gather(*(uploader() for _ in range(uploaders)))
    return jobs, errors


async def job_status(client: httpx.AsyncClient, job: str) -> str:
    return (await client.get(f"/v1/jobs/{job}")).json()["status"]


async def run(url: str, key: str, args: argparse.Namespace, seed: int) -> dict:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=limits) as client:
        load = Load(client, args.rate)
        stop = asyncio.Event()
        for _ in range(10):  # warm-up: the model, the engines, the connection pool
            await load._one("warm-up")
        load.latencies.clear()
        driver = asyncio.create_task(load.run(stop))
        await asyncio.sleep(args.idle_s)
        load.phase = "ingest"
        started = time.perf_counter()
        jobs, errors = await upload_all(client, args.docs, args.uploaders, seed)
        uploaded = time.perf_counter() - started
        while jobs and await job_status(client, jobs[-1]) not in ("succeeded", "failed"):  # one worker, in order
            await asyncio.sleep(0.2)
        ingested = time.perf_counter() - started
        load.phase = "waiting for the build"
        # the build starts QUIET_S after the last job; none starts when too few points lack a graph
        deadline = time.monotonic() + QUIET_S + args.build_wait_s
        while not (state := await hnsw(client))["building"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        load.phase = "hnsw build"
        build_started = time.perf_counter()
        while (state := await hnsw(client))["building"]:
            await asyncio.sleep(0.2)
        built = time.perf_counter() - build_started
        load.phase = "after"
        await asyncio.sleep(args.idle_s / 2)
        stop.set()
        await driver
        statuses = Counter([await job_status(client, job) for job in jobs])
    idle95 = percentile(load.latencies.get("idle", []), 95)
    phases = {
        phase: {"n": len(lat), "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
                "p95_vs_idle": round(percentile(lat, 95) / idle95, 2) if idle95 else None}
        for phase, lat in load.latencies.items()
    }
    return {"phases": phases, "docs": args.docs, "uploaded_s": round(uploaded, 1), "ingested_s": round(ingested, 1),
            "docs_per_s": round(len(jobs) / ingested, 1), "hnsw_build_s": round(built, 1), "hnsw": state,
            "jobs": dict(statuses), "errors": dict(load.errors + errors)}


def serve_and_run(base: Path, args: argparse.Namespace, env: dict[str, str], seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="sieve-bench-rdw-") as tmp:
        home = Path(tmp) / "home"
        shutil.copytree(base, home)
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            with serving(home) as (url, key):  # its key is tenant "bench"'s
                report = asyncio.run(run(url, key, args, seed))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        if report["errors"] or report["jobs"].get("failed"):
            print((home / "server.log").read_text()[-3000:], file=sys.stderr)
    return report


def print_report(title: str, report: dict) -> None:
    print(f"\n{title}")
    print(f"{'phase':<24} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8} {'p95 / idle p95':>15}")
    for phase, row in report["phases"].items():
        ratio = "" if row["p95_vs_idle"] is None else f"{row['p95_vs_idle']:.2f}x"
        print(f"{phase:<24} {row['n']:>8} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {ratio:>15}")
    print(f"ingest: {report['docs']} documents uploaded in {report['uploaded_s']} s, indexed by {report['ingested_s']} s "
          f"({report['docs_per_s']} docs/s); jobs {report['jobs']}; HNSW build {report['hnsw_build_s']} s "
          f"(index now {report['hnsw']}); errors {report['errors'] or 0}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="the base corpus, built here once and reused (copied per run)")
    ap.add_argument("--base", type=int, default=20_000, help="chunks of the base corpus")
    ap.add_argument("--docs", type=int, default=10_000, help="documents uploaded during the measurement")
    ap.add_argument("--rate", type=float, default=10.0, help="searches a second, open loop")
    ap.add_argument("--idle-s", type=float, default=20.0, help="seconds of idle searches before the uploads")
    ap.add_argument("--uploaders", type=int, default=4, help="uploads in flight at once")
    ap.add_argument("--build-wait-s", type=float, default=15.0,
                    help="seconds past the server's quiet time to wait for a build to start")
    ap.add_argument("--vs", action="append", default=[], metavar="ENV=VALUE",
                    help="run again with this server setting (repeatable: all apply to the second run)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("SIEVE_EMBEDDER", "auto")  # the default embedder, for the base corpus and the server
    embedder = base_home(args.home, args.base)
    env = {"SIEVE_HNSW_BUILD_QUIET_S": str(QUIET_S)}
    load_before = os.getloadavg()[0]
    reports = {"baseline": serve_and_run(args.home, args, env, seed=1)}
    if args.vs:
        vs = dict(item.split("=", 1) for item in args.vs)
        reports[" ".join(args.vs)] = serve_and_run(args.home, args, env | vs, seed=2)
    if args.json:
        print(json.dumps(reports, indent=2))
        return
    print(f"loopback, `sieve serve` (1 process), {os.cpu_count()} cores, {embedder}, base corpus {args.base} chunks "
          f"(HNSW built), {args.rate:g} searches/s open loop (bm25 + dense fused, distinct queries, each embedded), "
          f"{args.docs} documents uploaded {args.uploaders} at a time; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    for title, report in reports.items():
        print_report(title, report)


if __name__ == "__main__":
    main()
