"""The chat LLM: ChatOpenAI against any OpenAI-compatible URL, or none (deterministic mode)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_function
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from sieve.degraded import Degraded
from sieve.settings import Settings, StructuredMethod

M = TypeVar("M", bound=BaseModel)


class ChatClient(ChatOpenAI):
    """ChatOpenAI that knows how its server constrains structured output."""

    structured_method: StructuredMethod = "function_calling"


def build_chat_model(settings: Settings) -> BaseChatModel | None:
    if settings.llm_provider == "llamacpp":
        from sieve.models.llamacpp import local_server

        server = local_server(settings)
        # small local models rarely follow a tool-calling template; a grammar holds any of them to the schema
        return _client(settings, server.base_url, server.model.name, server.api_key, "json_schema")
    if not settings.llm_base_url:
        return None
    return _client(settings, settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_structured)


def _client(settings: Settings, base_url: str, model: str, api_key: str, method: StructuredMethod) -> ChatClient:
    return ChatClient(
        base_url=base_url,
        model=model,
        api_key=api_key,
        timeout=settings.llm_timeout_s,
        max_tokens=settings.llm_max_tokens,
        # a retry would double the wait before the deterministic fallback answers
        max_retries=0,
        temperature=0,
        structured_method=method,
    )


def structured(llm: BaseChatModel, schema: type[M]) -> Runnable:
    """`llm` constrained to return `schema`.

    By default function calling with a named tool: vLLM serves it through guided decoding without any
    tool-parser flags, and OpenAI supports it too. `json_schema` (a response format) suits servers that
    compile it into a grammar, such as llama.cpp's.
    """
    if isinstance(llm, ChatOpenAI):
        if getattr(llm, "structured_method", "function_calling") == "json_schema":
            # the schema as a dict, validated here: handed the class, langchain-openai's streamed parse
            # warns on every chunk
            as_dict = llm.with_structured_output(convert_to_openai_function(schema), method="json_schema")
            return as_dict | schema.model_validate
        return llm.with_structured_output(schema, method="function_calling")
    return llm.with_structured_output(schema)


def failure_kind(exc: BaseException) -> Degraded:
    timeouts = (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException, openai.APITimeoutError)
    return Degraded.LLM_TIMEOUT if isinstance(exc, timeouts) else Degraded.LLM_ERROR
