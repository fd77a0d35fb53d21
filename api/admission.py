"""Admission and pacing of conversation turns, so the first event never waits behind other turns.

A turn's first event (its route) is cheap; what follows (retrieval, grading, the answer) is CPU
work that on a small machine would otherwise interleave with every other turn on the event loop,
so a new user's route queued behind all of it. Turns therefore route at once, then take one of
`SIEVE_TURN_CONCURRENCY` (8) slots for the rest: the graph does not advance past its route until its
stream is read again, so holding the stream holds the turn. Past `SIEVE_TURN_QUEUE` turns in flight
the server answers 429 with `Retry-After` instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException

RETRY_AFTER_S = 1


class TurnGate:
    def __init__(self, concurrency: int, queue: int):
        self._slots = asyncio.Semaphore(concurrency)
        self.queue = queue
        self.in_flight = 0

    def admit(self) -> None:
        """429 when the server already holds its limit of turns (checked before a response starts)."""
        if self.in_flight >= self.queue:
            raise HTTPException(429, f"the server is busy with {self.in_flight} answers; retry in {RETRY_AFTER_S} s",
                                headers={"Retry-After": str(RETRY_AFTER_S)})

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[TurnPacer]:
        self.in_flight += 1
        pacer = TurnPacer(self._slots)
        try:
            yield pacer
        finally:
            self.in_flight -= 1
            pacer.release()


class TurnPacer:
    """One turn's slot: taken after its first event, released when the turn ends."""

    def __init__(self, slots: asyncio.Semaphore):
        self._slots = slots
        self._held = False

    async def after_first_event(self) -> None:
        if not self._held:
            await self._slots.acquire()
            self._held = True

    def release(self) -> None:
        if self._held:
            self._slots.release()
            self._held = False
