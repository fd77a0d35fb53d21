"""Admission control: past its limit of turns in flight the server answers 429 with Retry-After."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from server_support import add_key, load_samples, running_server, server_settings

from sieve.api import admission
from sieve.api.admission import TurnGate

pytestmark = pytest.mark.integration


async def test_a_turn_past_the_limit_is_refused_with_retry_after_and_served_once_one_ends(tmp_path):
    # one turn in flight at most; its BM25 path takes 2 s, so it is still running when the next arrives
    settings = server_settings(tmp_path, turn_queue=1, turn_concurrency=1, faults="bm25:delay=2s")
    key = add_key(settings, "acme")
    with running_server(settings) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as sync:
            load_samples(sync, "demo")
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            body = {"question": "What does Apple Inc. do?", "kb": "demo"}
            async with client.stream("POST", "/v1/agent/stream", json=body) as first:
                lines = first.aiter_lines()
                assert await anext(lines) == "event: route"  # the turn is in flight
                refused = await client.post("/v1/agent/stream", json=body)
                chat = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": body["question"]}]}
                refused_chat = await client.post("/v1/chat/completions", json=chat)
                events = [line async for line in lines if line.startswith("event:")]
            assert events[-1] == "event: done"
            for response in (refused, refused_chat):
                assert response.status_code == 429 and response.headers["retry-after"] == "1"
                assert "busy" in response.json()["error"]["message"]
            # the first turn ended: the next one is served
            async with client.stream("POST", "/v1/agent/stream", json=body) as again:
                assert again.status_code == 200
                assert [line async for line in again.aiter_lines() if line.startswith("event:")][-1] == "event: done"


async def test_running_turns_make_way_until_a_new_request_sends_its_first_event():
    gate = TurnGate(concurrency=2, queue=10)
    order: list[str] = []

    async def running_turn() -> None:
        async with gate.turn() as pacer:
            await pacer.after_event()  # routed: takes a slot, then goes on only when nobody is arriving
            order.append("running turn's next step")

    arrival = gate.admit()
    runner = asyncio.create_task(running_turn())
    await asyncio.sleep(0.05)
    order.append("new request's first event")
    arrival.first_event()
    await runner
    assert order == ["new request's first event", "running turn's next step"]


async def test_a_request_that_never_starts_its_stream_holds_the_others_only_briefly(monkeypatch):
    monkeypatch.setattr(admission, "ARRIVAL_HOLD_S", 0.05)
    gate = TurnGate(concurrency=1, queue=10)
    gate.admit()  # its client went away before the response began: nothing ends the arrival
    async with gate.turn() as pacer:
        await asyncio.wait_for(pacer.after_event(), 5)
