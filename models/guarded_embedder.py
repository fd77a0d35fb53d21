"""Query-time embedding under a time budget, behind a circuit breaker.

Routing, retrieval's dense path and grading each embed at query time. When the embedder is stuck
(a GPU queue, a remote endpoint timing out), each would wait out its own budget and a question
would pay them all. So one `GuardedEmbedder` is shared by the whole graph: the first call that
times out or fails opens the breaker, and for `cooldown_s` every call fails at once (reported as
`embedder_circuit_open` alone: nothing waited), so the nodes degrade (BM25 only, rules-only routing,
evidence-only grading) without waiting.
After the cooldown the next call tries the embedder again.

Under load, calls wait for one of the embedder's workers, and that wait is not the model's fault:
the breaker judges model time only (the clock starts when a worker begins the call). A caller
whose budget runs out while its call still waits, or shortly after a worker took it, gets
`embedder_busy` (its call is dropped if not begun) and the breaker stays closed; so does a caller
that finds `max_waiting` calls already waiting (admission: it fails at once rather than queueing
without bound). A call that does not answer although the model ran it for a good share of the
caller's budget, or that waited behind a call the model has run past its own budget, opens it.
Calls that wait together go to the model together: a free worker takes every waiting call of the
same kind (queries, passages) up to `max_batch` texts, one model call for a burst of questions;
the breaker allows a batch the budget of each call it carries.

Query vectors are kept in a small LRU: routing, the KB probe and retrieval embed the same question.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from cachetools import LRUCache

from sieve.degraded import Degraded
from sieve.errors import Unavailable
from sieve.models.embedding import Embedder, TextTokenizer

logger = logging.getLogger(__name__)
Failure = Literal["timeout", "error"]
Kind = Literal["query", "passage"]
Reason = Literal["timeout", "error", "circuit_open", "busy", "no_time"]
# what each reason adds to `degraded`: only what happened. With the breaker open nothing was
# embedded and nothing waited; with no time left the caller's own budget ran out, which it reports
_FLAGS: dict[Reason, list[Degraded]] = {
    "timeout": [Degraded.EMBEDDER_TIMEOUT],
    "error": [Degraded.EMBEDDER_ERROR],
    "circuit_open": [Degraded.EMBEDDER_CIRCUIT_OPEN],
    "busy": [Degraded.EMBEDDER_BUSY],
    "no_time": [],
}


class EmbedderUnavailable(Unavailable):
    """The embedder did not answer in time (`timeout`), failed (`error`), or was not asked: its
    breaker is open (`circuit_open`), its workers were all taken until the caller's budget ran out
    or too many calls already waited (`busy`), or the caller's budget was already spent (`no_time`)."""

    def __init__(self, reason: Reason):
        super().__init__(f"embedder unavailable: {reason.replace('_', ' ')}")
        self.reason: Reason = reason

    @property
    def flags(self) -> list[Degraded]:
        """What a node adds to `degraded`."""
        return list(_FLAGS[self.reason])


@dataclass(frozen=True)
class BreakerPolicy:
    cooldown_s: float = 10.0  # after a timeout or error, fail fast this long, then try again
    query_cache: int = 256  # query vectors kept (LRU)
    word_cache: int = 20_000  # word vectors kept for grading's synonym matching (LRU): a KB's words recur
    max_waiting: int = 64  # calls waiting for a worker; one more fails at once as `busy`
    max_batch: int = 32  # texts a worker sends to the model at once, from calls that waited together
    # a call unanswered after the model ran it for this share of the caller's budget is the model's fault;
    # not all of it: the caller's clock started a little before the worker's. Less misreads a starved CPU
    model_share: float = 0.8


@dataclass(eq=False)
class _Call:
    kind: Kind
    texts: list[str]
    timeout_s: float
    result: Future = field(default_factory=Future)
    started: float | None = None  # monotonic; set by the worker that runs the model
    batch: int = 1  # calls in the model call that carries this one

    def overran(self, now: float, share: float = 1.0) -> bool:
        """The model has run this call for `share` of its budget, times the calls it carries with it: a
        batch of many questions takes longer than one and is not a stuck model for that."""
        return self.started is not None and now - self.started >= share * self.timeout_s * self.batch


class GuardedEmbedder:
    """An `Embedder` (sync calls pass through, failing fast while the breaker is open) plus async
    calls under a timeout that open the breaker when they time out or fail."""

    def __init__(self, inner: Embedder, policy: BreakerPolicy = BreakerPolicy(), workers: int = 2):
        self.inner = inner
        self.policy = policy
        self.name = inner.name
        # its own small pool: a stuck model's threads queue here, not in the default executor
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sieve-embedder")
        self._lock = threading.Lock()  # guards the call bookkeeping below, which workers update
        self._waiting: deque[_Call] = deque()
        self._running: set[_Call] = set()
        self._open_until = 0.0
        self.trips = 0  # how often the breaker opened (benches and callers tell their own trip from an earlier one)
        self._last: Failure | Literal["ok"] | None = None  # the latest call's outcome; None before any
        self._queries: LRUCache[str, np.ndarray] = LRUCache(maxsize=policy.query_cache)
        self._words: LRUCache[str, np.ndarray] = LRUCache(maxsize=policy.word_cache)

    @property
    def dim(self) -> int:
        # read on use: a remote embedder learns its width from its first answer, and may be down now
        return self.inner.dim

    @property
    def tokenizer(self) -> TextTokenizer:
        return self.inner.tokenizer

    def health(self) -> dict[str, object]:
        """The latest call's outcome (`ok`, `error`, `timeout`; `unknown` before any) and the breaker."""
        return {"state": self._last or "unknown", "circuit_open": time.monotonic() < self._open_until}

    def trip(self, reason: Failure) -> None:
        """Open the breaker for the cooldown (the caller logs what happened)."""
        self._open_until = time.monotonic() + self.policy.cooldown_s
        self._last = reason
        self.trips += 1

    def _check(self) -> None:
        if time.monotonic() < self._open_until:
            raise EmbedderUnavailable("circuit_open")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._call(self.inner.embed_queries, texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._call(self.inner.embed_passages, texts)

    def _call(self, fn, texts: Sequence[str]) -> np.ndarray:
        self._check()
        try:
            vectors = fn(list(texts))
        except Exception as error:
            logger.warning("the embedder failed; its breaker opens for %.1f s", self.policy.cooldown_s, exc_info=True)
            self.trip("error")
            raise EmbedderUnavailable("error") from error
        self._last = "ok"
        return vectors

    async def aembed_queries(self, texts: Sequence[str], timeout_s: float) -> np.ndarray:
        """Query vectors within `timeout_s`, from the LRU where already embedded."""
        return await self._cached(self._queries, "query", texts, timeout_s)

    async def aembed_words(self, words: Sequence[str], timeout_s: float) -> np.ndarray:
        """Words embedded as passages within `timeout_s`, from their own LRU where already embedded."""
        return await self._cached(self._words, "passage", words, timeout_s)

    async def _cached(self, cache: LRUCache[str, np.ndarray], kind: Kind, texts: Sequence[str],
                      timeout_s: float) -> np.ndarray:
        texts = list(texts)
        # a local copy: a request longer than the cache still gets every vector it asked for
        found = {t: cache[t] for t in dict.fromkeys(texts) if t in cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            for text, vector in zip(missing, await self._within(kind, missing, timeout_s)):
                found[text] = cache[text] = vector
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    async def aembed_passages(self, texts: Sequence[str], timeout_s: float) -> np.ndarray:
        return await self._within("passage", list(texts), timeout_s)

    async def _within(self, kind: Kind, texts: list[str], timeout_s: float) -> np.ndarray:
        self._check()
        if timeout_s <= 0:  # the caller's budget is spent: no verdict on the embedder
            raise EmbedderUnavailable("no_time")
        call = _Call(kind, texts, timeout_s)
        with self._lock:
            if len(self._waiting) >= self.policy.max_waiting:
                raise EmbedderUnavailable("busy")
            self._waiting.append(call)
        self._pool.submit(self._work)  # one worker turn per call: it takes this call, or a batch holding it
        try:
            # `asyncio.wait` leaves the call alone when time runs out: the verdict below decides
            done, _ = await asyncio.wait({asyncio.wrap_future(call.result)}, timeout=timeout_s)
        except asyncio.CancelledError:  # the caller's own budget ran out first (the dense path's)
            self._give_up(call)
            raise
        if not done:
            reason = self._give_up(call)
            if reason == "timeout":
                logger.warning("the embedder did not answer within %.0f ms; its breaker opens for %.1f s",
                               timeout_s * 1000, self.policy.cooldown_s)
            raise EmbedderUnavailable(reason)
        try:
            vectors = done.pop().result()
        except Exception as error:
            logger.warning("the embedder failed; its breaker opens for %.1f s", self.policy.cooldown_s, exc_info=True)
            self.trip("error")
            raise EmbedderUnavailable("error") from error
        self._last = "ok"
        return vectors

    def _work(self) -> None:
        """On a worker: the oldest waiting call and those of its kind that fit beside it, in one model call."""
        with self._lock:
            if not self._waiting:  # an earlier batch took this turn's call, or its caller gave up
                return
            batch = [self._waiting.popleft()]
            size = len(batch[0].texts)
            for call in list(self._waiting):
                if call.kind == batch[0].kind and size + len(call.texts) <= self.policy.max_batch:
                    self._waiting.remove(call)
                    batch.append(call)
                    size += len(call.texts)
            started = time.monotonic()
            for call in batch:
                call.started, call.batch = started, len(batch)
            self._running.update(batch)
        embed = self.inner.embed_queries if batch[0].kind == "query" else self.inner.embed_passages
        try:
            vectors = embed([text for call in batch for text in call.texts])
        except Exception as error:
            for call in batch:
                call.result.set_exception(error)
        else:
            offset = 0
            for call in batch:
                call.result.set_result(vectors[offset:offset + len(call.texts)])
                offset += len(call.texts)
        finally:
            with self._lock:
                self._running.difference_update(batch)

    def _give_up(self, call: _Call) -> Reason:
        """The caller stops waiting for `call`: the breaker opens if the model is to blame (`timeout`);
        otherwise the call is dropped if no worker took it yet and the caller was only `busy`."""
        now = time.monotonic()
        with self._lock:
            if call.started is None:  # never begun: it leaves the queue
                self._waiting.remove(call)
            model_slow = call.overran(now, self.policy.model_share)
            # the call waited behind one the model has run past its own budget: the model is stuck
            stuck = any(c is not call and c.overran(now) for c in self._running)
        if model_slow or stuck:
            self.trip("timeout")
            return "timeout"
        if time.monotonic() < self._open_until:  # another caller found the model stuck meanwhile
            return "circuit_open"
        return "busy"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def guarded(embedder: Embedder | None) -> GuardedEmbedder | None:
    """`embedder` behind a breaker of its own, unless it already is."""
    if embedder is None or isinstance(embedder, GuardedEmbedder):
        return embedder
    return GuardedEmbedder(embedder)
