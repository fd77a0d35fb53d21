"""Query-time embedding under a time budget, behind a circuit breaker.

Routing, retrieval's dense path and grading each embed at query time. When the embedder is stuck
(a GPU queue, a remote endpoint timing out), each would wait out its own budget and a question
would pay them all. So one `GuardedEmbedder` is shared by the whole graph: the first call that
times out or fails opens the breaker, and for `cooldown_s` every call fails at once (reported as
`embedder_circuit_open` alone: nothing waited), so the nodes degrade (BM25 only, rules-only routing,
evidence-only grading) without waiting.
After the cooldown the next call tries the embedder again.

Query vectors are kept in a small LRU: routing, the KB probe and retrieval embed the same question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sieve.degraded import Degraded
from sieve.models.embedding import Embedder, TextTokenizer

logger = logging.getLogger(__name__)
Failure = Literal["timeout", "error"]
Reason = Literal["timeout", "error", "circuit_open", "no_time"]
# what each reason adds to `degraded`: only what happened. With the breaker open nothing was
# embedded and nothing waited; with no time left the caller's own budget ran out, which it reports
_FLAGS: dict[Reason, list[Degraded]] = {
    "timeout": [Degraded.EMBEDDER_TIMEOUT],
    "error": [Degraded.EMBEDDER_ERROR],
    "circuit_open": [Degraded.EMBEDDER_CIRCUIT_OPEN],
    "no_time": [],
}


class EmbedderUnavailable(RuntimeError):
    """The embedder did not answer in time (`timeout`), failed (`error`), or was not asked: its
    breaker is open (`circuit_open`) or the caller's budget was already spent (`no_time`)."""

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


class GuardedEmbedder:
    """An `Embedder` (sync calls pass through, failing fast while the breaker is open) plus async
    calls under a timeout that open the breaker when they time out or fail."""

    def __init__(self, inner: Embedder, policy: BreakerPolicy = BreakerPolicy(), workers: int = 2):
        self.inner = inner
        self.policy = policy
        self.name = inner.name
        # its own small pool: a stuck model's threads queue here, not in the default executor
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sieve-embedder")
        self._open_until = 0.0
        self._last: Failure | Literal["ok"] | None = None  # the latest call's outcome; None before any
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._words: OrderedDict[str, np.ndarray] = OrderedDict()

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
        return await self._cached(self._queries, self.policy.query_cache, self.inner.embed_queries, texts, timeout_s)

    async def aembed_words(self, words: Sequence[str], timeout_s: float) -> np.ndarray:
        """Words embedded as passages within `timeout_s`, from their own LRU where already embedded."""
        return await self._cached(self._words, self.policy.word_cache, self.inner.embed_passages, words, timeout_s)

    async def _cached(self, cache: OrderedDict[str, np.ndarray], size: int, fn, texts: Sequence[str],
                      timeout_s: float) -> np.ndarray:
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            for text, vector in zip(missing, await self._within(fn, missing, timeout_s)):
                cache[text] = vector
        for text in texts:
            cache.move_to_end(text)
        while len(cache) > size:
            cache.popitem(last=False)
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    async def aembed_passages(self, texts: Sequence[str], timeout_s: float) -> np.ndarray:
        return await self._within(self.inner.embed_passages, list(texts), timeout_s)

    async def _within(self, fn, texts: list[str], timeout_s: float) -> np.ndarray:
        self._check()
        if timeout_s <= 0:  # the caller's budget is spent: no verdict on the embedder
            raise EmbedderUnavailable("no_time")
        call = asyncio.get_running_loop().run_in_executor(self._pool, fn, texts)
        try:
            vectors = await asyncio.wait_for(call, timeout_s)
        except TimeoutError as error:
            logger.warning("the embedder did not answer within %.0f ms; its breaker opens for %.1f s",
                           timeout_s * 1000, self.policy.cooldown_s)
            self.trip("timeout")
            raise EmbedderUnavailable("timeout") from error
        except Exception as error:
            logger.warning("the embedder failed; its breaker opens for %.1f s", self.policy.cooldown_s, exc_info=True)
            self.trip("error")
            raise EmbedderUnavailable("error") from error
        self._last = "ok"
        return vectors

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def guarded(embedder: Embedder | None) -> GuardedEmbedder | None:
    """`embedder` behind a breaker of its own, unless it already is."""
    if embedder is None or isinstance(embedder, GuardedEmbedder):
        return embedder
    return GuardedEmbedder(embedder)
