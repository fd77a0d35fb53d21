"""OpenAI-compatible chat: `POST /v1/chat/completions` and `GET /v1/models`.

`model` names the knowledge base. The last message is the question; earlier user and assistant
messages are the history (client system prompts are ignored: the graph's prompts are fixed, and
retrieved text can never change them). What OpenAI's schema has no field for (route, citations,
degraded steps, refusal) travels in a `sieve` object: on the completion, or on the final chunk.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from sieve.api.conversation import ask_once, check_kb, check_question, run_turn
from sieve.api.deps import StateDep, TenantDep
from sieve.api.knowledge import TenantKnowledge

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls ... are accepted and not needed
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(part.type != "text" for part in self.content):
            raise HTTPException(400, "only text content is supported")
        return "".join(part.text or "" for part in self.content)


class ChatCompletionRequest(BaseModel):
    # sampling knobs (temperature, max_tokens ...) are accepted and ignored: the graph decides
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, description="The knowledge base to answer from (GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    n: int = 1


def _sieve_fields(done: dict[str, Any]) -> dict[str, Any]:
    keys = ("route", "rewritten_query", "citations", "degraded", "refused", "refusal_reason", "timings_ms")
    return {key: done.get(key) for key in keys}


def _dialogue(request: ChatCompletionRequest) -> tuple[str, list[BaseMessage]]:
    if request.n != 1:
        raise HTTPException(400, "n must be 1: the graph gives one answer per question")
    *earlier, last = request.messages
    if last.role != "user":
        raise HTTPException(400, "the last message must be the user's question")
    history: list[BaseMessage] = []
    for message in earlier:
        if message.role == "user":
            history.append(HumanMessage(message.text()))
        elif message.role == "assistant" and message.text():
            history.append(AIMessage(message.text()))
    return last.text(), history


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    request: ChatCompletionRequest, state: StateDep, tenant: TenantDep
) -> dict[str, Any] | EventSourceResponse:
    question, history = _dialogue(request)
    question = check_question(question, state.settings.max_question_chars)
    await check_kb(state, tenant, request.model)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not request.stream:
        done = await ask_once(state, tenant, question, request.model, history=history)
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": request.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": done["answer"]},
                         "finish_reason": "stop", "logprobs": None}],
            "sieve": _sieve_fields(done),
        }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> ServerSentEvent:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                   "model": request.model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return ServerSentEvent(data=json.dumps(payload, ensure_ascii=False))

    async def chunks() -> AsyncIterator[ServerSentEvent]:
        yield chunk({"role": "assistant", "content": ""})
        try:
            async for event in run_turn(state, tenant, question, request.model, history=history):
                if event.type == "token":
                    yield chunk({"content": event.data["text"]})
                elif event.type == "done":
                    yield chunk({}, "stop", sieve=_sieve_fields(event.data))
        except Exception:
            log.exception("chat completion %s failed", completion_id)
            error = {"message": "the answer failed on the server; see its log", "type": "server_error"}
            yield ServerSentEvent(data=json.dumps({"error": error}))
            return
        yield ServerSentEvent(data="[DONE]")

    return EventSourceResponse(chunks(), headers=SSE_HEADERS)


@router.get("/models")
async def list_models(state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """The knowledge bases this key may ask, as OpenAI models."""
    kbs = await TenantKnowledge(state, tenant).knowledge_bases()
    return {"object": "list", "data": [
        {"id": kb["name"], "object": "model", "created": int(datetime.fromisoformat(kb["created_at"]).timestamp()),
         "owned_by": "sieve"} for kb in kbs
    ]}
