"""The chat LLM: ChatOpenAI against any OpenAI-compatible URL, or none (deterministic mode)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from sieve.degraded import Degraded
from sieve.settings import Settings

M = TypeVar("M", bound=BaseModel)


def build_chat_model(settings: Settings) -> BaseChatModel | None:
    if not settings.llm_base_url:
        return None
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_s,
        # a retry would double the wait before the deterministic fallback answers
        max_retries=0,
        temperature=0,
    )


def structured(llm: BaseChatModel, schema: type[M]) -> Runnable:
    """`llm` constrained to return `schema`.

    Function calling with a named tool: vLLM serves it through guided decoding without any
    tool-parser flags, and OpenAI and llama.cpp support it too.
    """
    if isinstance(llm, ChatOpenAI):
        return llm.with_structured_output(schema, method="function_calling")
    return llm.with_structured_output(schema)


def failure_kind(exc: BaseException) -> Degraded:
    timeouts = (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException, openai.APITimeoutError)
    return Degraded.LLM_TIMEOUT if isinstance(exc, timeouts) else Degraded.LLM_ERROR
