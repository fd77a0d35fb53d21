"""Soak on loopback: concurrent OpenAI-stream chats while documents are uploaded, deleted and searched.

`sieve serve` in its own process on a temp home (deterministic mode, the offline embedder). For
`--seconds`, `--streams` clients each ask one streamed `POST /v1/chat/completions` after another,
while uploaders add small documents (each holding one made-up word no other holds), a deleter
removes some of them and searchers query. Then, with the server quiet, a consistency check: every
document the bench knows as ready is listed and found by its word on the bm25 and hybrid paths and
by its own text on the dense path; no deleted one is listed or found on any path.

Prints errors, inconsistencies, first-token and total p50/p95, throughput and the machine's load;
exits 1 on any error or inconsistency.

    .venv/bin/python bench/bench_soak.py [--streams 50] [--seconds 60] [--uploaders 2] [--searchers 4] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import CONVERSATIONS, ingest, serving
from synthetic import sentence

from sieve.evals.metrics import percentile

KB = "soak"
QUESTIONS = [q for conversation in CONVERSATIONS for q in conversation]
# the check's searches wait for nothing: a degraded search (a budget run out) says nothing about the stores
CHECK_BUDGETS = {"embed_budget_ms": 60_000, "path_budget_ms": 60_000, "total_budget_ms": 120_000}
CHECK_PATHS = {"bm25": ["bm25"], "hybrid": ["bm25", "dense"], "dense": ["dense"]}


@dataclass
class Soak:
    """What the load phase did and saw; `live` and `deleted` map doc ids to their documents."""

    rng: random.Random
    deadline: float
    live: dict[str, tuple[str, str]] = field(default_factory=dict)  # doc id -> (word, text)
    deleted: dict[str, tuple[str, str]] = field(default_factory=dict)
    unsure: set[str] = field(default_factory=set)  # deletes whose outcome the bench could not see
    errors: Counter[str] = field(default_factory=Counter)
    degraded: Counter[str] = field(default_factory=Counter)  # flags of the answers (not errors: fallbacks)
    turns: list[dict[str, float]] = field(default_factory=list)
    uploads_s: list[float] = field(default_factory=list)
    searches_s: list[float] = field(default_factory=list)
    deletes: int = 0
    next_doc: int = 0

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def new_document(self) -> tuple[str, str, str]:
        """(file name, unique word, text) of a fresh document."""
        n, self.next_doc = self.next_doc, self.next_doc + 1
        word = f"zorblat{n}quix"
        text = f"Soak note {n} mentions {word} once. " + " ".join(sentence(self.rng) for _ in range(3))
        return f"soak-{n}.txt", word, text


async def stream_chat(client: httpx.AsyncClient, soak: Soak, question: str) -> None:
    """One streamed completion: time to the first content token and to `[DONE]`."""
    body = {"model": KB, "stream": True, "messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    first_token = None
    finished = False
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            soak.errors[f"chat HTTP {response.status_code}"] += 1
            return
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                finished = True
                break
            payload = json.loads(data)
            if "error" in payload:
                soak.errors[f"chat stream error: {payload['error'].get('message')}"] += 1
                return
            if first_token is None and payload["choices"][0]["delta"].get("content"):
                first_token = time.perf_counter() - started
            soak.degraded.update(payload.get("sieve", {}).get("degraded") or [])
    total = time.perf_counter() - started
    if not finished:
        soak.errors["chat stream ended without [DONE]"] += 1
        return
    soak.turns.append({"first_token": first_token if first_token is not None else total, "total": total})


async def chatter(client: httpx.AsyncClient, soak: Soak) -> None:
    while soak.running():
        try:
            await stream_chat(client, soak, soak.rng.choice(QUESTIONS))
        except httpx.HTTPError as exc:
            soak.errors[f"chat {type(exc).__name__}"] += 1


async def upload(client: httpx.AsyncClient, soak: Soak) -> None:
    filename, word, text = soak.new_document()
    started = time.perf_counter()
    response = await client.post(f"/v1/knowledge-bases/{KB}/documents", files={"file": (filename, text.encode())})
    if response.status_code != 202:
        soak.errors[f"upload HTTP {response.status_code}"] += 1
        return
    job = response.json()
    while job["status"] in ("queued", "running"):
        await asyncio.sleep(0.2)
        job = (await client.get(f"/v1/jobs/{job['id']}")).json()
    if job["status"] != "succeeded" or len(job["report"]["doc_ids"]) != 1:
        soak.errors[f"upload job {job['status']}: {job['error']}"] += 1
        return
    soak.uploads_s.append(time.perf_counter() - started)
    soak.live[job["report"]["doc_ids"][0]] = (word, text)


async def uploader(client: httpx.AsyncClient, soak: Soak) -> None:
    while soak.running():
        try:
            await upload(client, soak)
        except httpx.HTTPError as exc:
            soak.errors[f"upload {type(exc).__name__}"] += 1


async def deleter(client: httpx.AsyncClient, soak: Soak, every_s: float) -> None:
    """Deletes one of the bench's documents every `every_s`, keeping at least a handful."""
    while soak.running():
        await asyncio.sleep(every_s)
        if len(soak.live) < 5:
            continue
        doc_id = soak.rng.choice(sorted(soak.live))
        document = soak.live.pop(doc_id)  # from now on it must not be found
        try:
            response = await client.delete(f"/v1/knowledge-bases/{KB}/documents/{doc_id}")
        except httpx.HTTPError as exc:
            soak.errors[f"delete {type(exc).__name__}"] += 1
            soak.unsure.add(doc_id)  # outcome unknown: the check leaves it out
            continue
        if response.status_code != 204:
            soak.errors[f"delete HTTP {response.status_code}"] += 1
            soak.unsure.add(doc_id)
            continue
        soak.deleted[doc_id] = document
        soak.deletes += 1


async def searcher(client: httpx.AsyncClient, soak: Soak) -> None:
    while soak.running():
        live = sorted(soak.live)
        query = soak.live[soak.rng.choice(live)][0] if live and soak.rng.random() < 0.5 else soak.rng.choice(QUESTIONS)
        started = time.perf_counter()
        try:
            response = await client.post(f"/v1/knowledge-bases/{KB}/search", json={"query": query, "k": 10})
        except httpx.HTTPError as exc:
            soak.errors[f"search {type(exc).__name__}"] += 1
            continue
        if response.status_code != 200:
            soak.errors[f"search HTTP {response.status_code}"] += 1
            continue
        soak.searches_s.append(time.perf_counter() - started)


async def set_paths(client: httpx.AsyncClient, paths: list[str]) -> None:
    profile = (await client.get(f"/v1/knowledge-bases/{KB}/profile")).json()
    (await client.put(f"/v1/knowledge-bases/{KB}/profile", json={**profile, **CHECK_BUDGETS, "paths": paths})
     ).raise_for_status()


async def found_ids(client: httpx.AsyncClient, query: str, k: int = 10, tries: int = 5) -> set[str] | None:
    """Doc ids of an undegraded search; None when every try degraded (the check cannot tell)."""
    for _ in range(tries):
        result = (await client.post(f"/v1/knowledge-bases/{KB}/search", json={"query": query, "k": k})
                  ).raise_for_status().json()
        if not result["degraded"]:
            return {hit["doc_id"] for hit in result["hits"]}
        await asyncio.sleep(2)  # an open embedder breaker closes after its cooldown
    return None


async def check(client: httpx.AsyncClient, soak: Soak) -> tuple[list[str], int]:
    """Inconsistencies between what the bench knows and what the server lists and finds; lookups made."""
    problems: list[str] = []
    lookups = 0
    listed = {d["doc_id"] for d in (await client.get(f"/v1/knowledge-bases/{KB}/documents")).json()["data"]
              if d["filename"].startswith("soak-")}
    problems += [f"ready document {d} is not listed" for d in sorted(set(soak.live) - listed)]
    problems += [f"deleted document {d} is listed" for d in sorted(set(soak.deleted) & listed)]
    problems += [f"document {d} is listed but the bench never saw it ready" for d in sorted(
        listed - set(soak.live) - set(soak.deleted) - soak.unsure)]
    for path, paths in CHECK_PATHS.items():
        await set_paths(client, paths)
        for group, should_find in ((soak.live, True), (soak.deleted, False)):
            for doc_id, (word, text) in group.items():
                found = await found_ids(client, text if path == "dense" else word)
                lookups += 1
                if found is None:
                    problems.append(f"{path}: every search for {doc_id} was degraded")
                elif (doc_id in found) != should_find:
                    problems.append(f"{path}: {'ready' if should_find else 'deleted'} document {doc_id} "
                                    f"{'not found' if should_find else 'found'}")
    return problems, lookups


def latency(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1)}


async def run(url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.streams + args.uploaders + args.searchers + 10)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300,
                                 limits=limits) as client:
        await ingest(client, KB)  # what the chats ask about
        soak = Soak(random.Random(args.seed), deadline=0.0)
        for _ in range(args.seed_documents):
            await upload(client, soak)
        soak.deadline = time.monotonic() + args.seconds
        load_before = os.getloadavg()
        started = time.perf_counter()
        await asyncio.gather(
            *(chatter(client, soak) for _ in range(args.streams)),
            *(uploader(client, soak) for _ in range(args.uploaders)),
            *(searcher(client, soak) for _ in range(args.searchers)),
            deleter(client, soak, args.delete_every_s),
        )
        wall = time.perf_counter() - started
        load_after = os.getloadavg()
        problems, lookups = await check(client, soak)
    return {
        "streams": args.streams, "seconds": args.seconds, "wall_s": round(wall, 1),
        "errors": sum(soak.errors.values()), "error_kinds": dict(soak.errors),
        "inconsistencies": len(problems), "problems": problems[:50], "check_lookups": lookups,
        "turns": len(soak.turns), "turns_per_s": round(len(soak.turns) / wall, 2), "degraded": dict(soak.degraded),
        "first_token": latency([t["first_token"] for t in soak.turns]),
        "total": latency([t["total"] for t in soak.turns]),
        "uploads": latency(soak.uploads_s), "deletes": soak.deletes, "searches": latency(soak.searches_s),
        "documents_ready": len(soak.live), "documents_deleted": len(soak.deleted),
        "load_avg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50, help="concurrent streamed chats")
    parser.add_argument("--seconds", type=float, default=60, help="length of the load phase")
    parser.add_argument("--uploaders", type=int, default=2, help="concurrent upload loops")
    parser.add_argument("--searchers", type=int, default=4, help="concurrent search loops")
    parser.add_argument("--delete-every-s", type=float, default=1.0, help="one delete per this many seconds")
    parser.add_argument("--seed-documents", type=int, default=10, help="documents uploaded before the load")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sieve-bench-soak-") as tmp:
        home = Path(tmp)
        with serving(home) as (url, key):
            report = asyncio.run(run(url, key, args))
        if report["errors"] or report["inconsistencies"]:  # the server's side of the story
            print((home / "server.log").read_text()[-3000:], file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"loopback, `sieve serve` (1 process), {report['cpus']} cores, deterministic mode; "
              f"load average (1 min) {report['load_avg_1m_before_after'][0]} before, "
              f"{report['load_avg_1m_before_after'][1]} after")
        print(f"{report['streams']} streams for {report['wall_s']} s: {report['turns']} turns "
              f"({report['turns_per_s']}/s), first token p50 {report['first_token']['p50_ms']} ms "
              f"p95 {report['first_token']['p95_ms']} ms, total p50 {report['total']['p50_ms']} ms "
              f"p95 {report['total']['p95_ms']} ms")
        print(f"degraded answers' flags: {report['degraded'] or 'none'}")
        print(f"alongside: {report['uploads']['n']} uploads (job p50 {report['uploads']['p50_ms']} ms), "
              f"{report['deletes']} deletes, {report['searches']['n']} searches (p50 {report['searches']['p50_ms']} ms "
              f"p95 {report['searches']['p95_ms']} ms); {report['documents_ready']} documents ready, "
              f"{report['documents_deleted']} deleted at the check")
        print(f"errors: {report['errors']} {report['error_kinds'] or ''}")
        print(f"inconsistencies: {report['inconsistencies']} (listing, then {report['check_lookups']} searches: "
              "bm25 and hybrid by each document's word, dense by its text)")
        for problem in report["problems"]:
            print(f"  {problem}")
    if report["errors"] or report["inconsistencies"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
