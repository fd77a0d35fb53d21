"""Admission and pacing of conversation turns, so the first event never waits behind other turns.

A turn's first event (its route) is cheap; what follows (retrieval, grading, the answer) is CPU
work that on a small machine would otherwise interleave with every other turn on the event loop,
so a new user's route queued behind all of it. Turns therefore route at once, then take one of
`SIEVE_TURN_CONCURRENCY` (8) slots for the rest: the graph does not advance past its route until its
stream is read again, so holding the stream holds the turn. While a new request has not sent its first
event, turns that hold a slot also wait between their events (the work already under way finishes),
so a burst of new users is answered first. Past `SIEVE_TURN_QUEUE` turns in flight the server answers
429 with `Retry-After` instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException

RETRY_AFTER_S = 1
# the longest a running turn holds still for new ones: a request that never starts its stream (its client
# went away before the response began) must not hold the others for good
ARRIVAL_HOLD_S = 1.0


class TurnGate:
    def __init__(self, concurrency: int, queue: int):
        self._slots = asyncio.Semaphore(concurrency)
        self.queue = queue
        self.in_flight = 0
        self.arriving = 0  # requests admitted whose first event is not out yet
        self._quiet = asyncio.Event()  # set while nothing is arriving
        self._quiet.set()

    def admit(self) -> Arrival:
        """429 when the server already holds its limit of turns (checked before a response starts); else the
        request's arrival, which running turns make way for until `Arrival.first_event` (or `Arrival.gone`)."""
        if self.in_flight >= self.queue:
            raise HTTPException(429, f"the server is busy with {self.in_flight} answers; retry in {RETRY_AFTER_S} s",
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        self.arriving += 1
        self._quiet.clear()
        return Arrival(self)

    def _arrived(self) -> None:
        self.arriving -= 1
        if not self.arriving:
            self._quiet.set()

    async def make_way(self) -> None:
        """Wait while new requests have not sent their first event (at most `ARRIVAL_HOLD_S`)."""
        if not self._quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), ARRIVAL_HOLD_S)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[TurnPacer]:
        self.in_flight += 1
        pacer = TurnPacer(self)
        try:
            yield pacer
        finally:
            self.in_flight -= 1
            pacer.release()


class Arrival:
    """One admitted request until its first event is out; ending it twice is harmless."""

    def __init__(self, gate: TurnGate):
        self._gate: TurnGate | None = gate

    def first_event(self) -> None:
        if self._gate is not None:
            self._gate._arrived()
            self._gate = None

    gone = first_event  # a request that fails or is cancelled before its first event


class TurnPacer:
    """One turn's slot: taken after its first event, released when the turn ends."""

    def __init__(self, gate: TurnGate):
        self._gate = gate
        self._held = False

    async def after_event(self) -> None:
        """Between two events: the first takes a slot; every one makes way for arriving requests."""
        if not self._held:
            await self._gate._slots.acquire()
            self._held = True
        await self._gate.make_way()

    def release(self) -> None:
        if self._held:
            self._gate._slots.release()
            self._held = False
