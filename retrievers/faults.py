"""Fault injection at retrieval's component boundaries: `SIEVE_FAULTS="dense:delay=2s,reranker:error"`.

A fault wraps a component (the query embedder, a recall path's index, the reranker) and delays or
fails its calls before they reach it; engines themselves never know. Off unless configured. Delays
block the calling thread like a slow engine does, so bounded pools and late results get exercised.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

from sieve.errors import ConfigurationError

Target = str  # "embedder", "bm25", "dense", "graph", "image", "reranker"
TARGETS = frozenset({"embedder", "bm25", "dense", "graph", "image", "reranker"})
C = TypeVar("C")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")


class FaultKind(StrEnum):
    DELAY = "delay"
    ERROR = "error"


class InjectedFault(RuntimeError):
    """What a component with an `error` fault raises."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    delay_s: float = 0.0

    def before_call(self, target: str) -> None:
        if self.kind is FaultKind.DELAY:
            time.sleep(self.delay_s)
        else:
            raise InjectedFault(f"injected fault: {target} fails")

    async def before_acall(self, target: str) -> None:
        if self.kind is FaultKind.DELAY:
            await asyncio.sleep(self.delay_s)
        else:
            raise InjectedFault(f"injected fault: {target} fails")


@dataclass(frozen=True)
class Faults:
    """Parsed `SIEVE_FAULTS`: at most one fault per target."""

    by_target: tuple[tuple[str, Fault], ...] = ()

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        """`target:delay=500ms` or `target:error`, comma-separated; a bad spec is a ValueError."""
        faults: dict[str, Fault] = {}
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            target, _, action = item.partition(":")
            target = target.strip()
            if target not in TARGETS:
                raise ConfigurationError(f"SIEVE_FAULTS: unknown target {target!r} (one of {', '.join(sorted(TARGETS))})")
            kind, _, value = action.strip().partition("=")
            if kind == FaultKind.ERROR.value and not value:
                faults[target] = Fault(FaultKind.ERROR)
            elif kind == FaultKind.DELAY.value and (m := _DURATION.match(value.strip())):
                faults[target] = Fault(FaultKind.DELAY, float(m[1]) / (1000 if m[2] == "ms" else 1))
            else:
                raise ConfigurationError(f"SIEVE_FAULTS: {item!r} is not `target:error` or `target:delay=<N>ms|<N>s`")
        return cls(tuple(sorted(faults.items())))

    def get(self, target: str) -> Fault | None:
        return dict(self.by_target).get(target)

    def wrap(self, target: str, component: C, methods: tuple[str, ...]) -> C:
        """The component itself when no fault targets it, else a proxy whose `methods` misbehave
        (typed as the component: it forwards every other attribute)."""
        fault = self.get(target)
        return component if fault is None else cast(C, FaultyComponent(component, target, fault, methods))


class FaultyComponent:
    """A proxy: the named methods (sync or async) suffer the fault first; everything else passes through."""

    def __init__(self, inner: Any, target: str, fault: Fault, methods: tuple[str, ...]):
        self._inner, self._target, self._fault, self._methods = inner, target, fault, methods

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._methods:
            return attr
        if inspect.iscoroutinefunction(attr):
            async def afaulty(*args: Any, **kwargs: Any) -> Any:
                await self._fault.before_acall(self._target)
                return await attr(*args, **kwargs)

            return afaulty

        def faulty(*args: Any, **kwargs: Any) -> Any:
            self._fault.before_call(self._target)
            return attr(*args, **kwargs)

        return faulty
