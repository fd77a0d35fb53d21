"""How nodes call the chat LLM: bounded in time, and failing over to deterministic mode.

Internal decisions (route, rewrite, grade) are tagged `nostream`, so LangGraph's `messages` stream
carries only the answer's tokens. After one timeout or error in a turn the rest of the turn is
deterministic: waiting out the same dead server once per node would multiply the delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langgraph.constants import TAG_NOSTREAM
from pydantic import BaseModel

from sieve.degraded import Degraded
from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.state import State
from sieve.models.chat import failure_kind, structured

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
FAILURES = frozenset({Degraded.LLM_TIMEOUT, Degraded.LLM_ERROR})


class LLMFailed(Exception):
    """The LLM call failed; `kind` is the flag the node adds to `degraded`."""

    def __init__(self, kind: Degraded):
        super().__init__(kind)
        self.kind = kind


def _failed(exc: BaseException | None = None, what: str = "failed") -> LLMFailed:
    """The failure, logged with its traceback where it happened."""
    kind = failure_kind(exc) if exc is not None else Degraded.LLM_ERROR
    logger.warning("chat LLM %s (%s); the rest of the turn is deterministic", what, kind, exc_info=exc)
    return LLMFailed(kind)


def llm_for(state: State, ctx: GraphContext) -> BaseChatModel | None:
    """The LLM a node may use now: none in deterministic mode or after an LLM failure this turn."""
    if ctx.llm is None or any(flag in FAILURES for flag in state.get("degraded", [])):
        return None
    return ctx.llm


async def decide(llm: BaseChatModel, schema: type[M], messages: Sequence[BaseMessage], timeout_s: float) -> M:
    """A structured decision, never streamed to the user."""
    runnable = structured(llm, schema).with_config(tags=[TAG_NOSTREAM], run_name=schema.__name__)
    try:
        result = await asyncio.wait_for(runnable.ainvoke(list(messages)), timeout_s)
    except Exception as exc:  # any failure means: decide deterministically instead
        raise _failed(exc) from exc
    if not isinstance(result, schema):
        raise _failed(what=f"returned no {schema.__name__}")
    return result


async def generate(llm: BaseChatModel, messages: Sequence[BaseMessage], timeout_s: float) -> AIMessage:
    """A streamed reply; `timeout_s` bounds the wait for each token, so long answers are fine."""
    stream = llm.astream(list(messages)).__aiter__()
    merged: AIMessageChunk | None = None
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(stream), timeout_s)
            except StopAsyncIteration:
                break
            merged = chunk if merged is None else merged + chunk
    except Exception as exc:
        raise _failed(exc) from exc
    finally:
        # typed as an iterator, but chat models return a generator: closed here, an abandoned stream
        # (timeout, error) stops at once instead of whenever it is collected
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()
    if merged is None or not isinstance(merged.content, str) or not merged.content.strip():
        raise _failed(what="returned an empty reply")
    return AIMessage(content=merged.content, id=merged.id)
