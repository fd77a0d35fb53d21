"""OpenAI-compatible chat: `POST /v1/chat/completions`, `GET /v1/models` and `POST /v1/embeddings`.

`model` names the knowledge base. The last message is the question; earlier user and assistant
messages are the history (client system prompts are ignored: the graph's prompts are fixed, and
retrieved text can never change them). Citations are OpenAI `url_citation` annotations, one per `[n]`
marker, each a link to the cited chunk on this server; a refusal is also `message.refusal`; `usage`
counts tokens with the embedder's tokenizer. What OpenAI's schema has no field for (route, rewritten
query, quotes, degraded steps) travels in a `sieve` object: on the completion, or on the final chunk.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from sieve.api.conversation import ask_once, check_question, find_kb, research_once, run_research, run_turn
from sieve.api.deps import PrincipalDep, StateDep, TenantDep
from sieve.api.knowledge import TenantKnowledge
from sieve.api.openai_types import (
    Annotation,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Embedding,
    EmbeddingList,
    EmbeddingUsage,
    Model,
    ModelList,
    SieveFields,
    UrlCitation,
    Usage,
)
from sieve.api.routes.citations import citation_url, link_secret
from sieve.api.state import AppState
from sieve.errors import InvalidInput
from sieve.graphs.shared.state import Citation
from sieve.stores.acl import Principal

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# what OpenAPI shows for a route that answers an event stream (each event's `data` is JSON)
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"description": "Server-sent events.",
                                                       "content": {"text/event-stream": {}}}}
RESEARCH_PREFIX = "research:"  # `model="research:handbook"`: deep research over the knowledge base `handbook`


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
            raise InvalidInput("only text content is supported")
        return "".join(part.text or "" for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # sampling knobs (temperature, max_tokens ...) are accepted and ignored: the graph decides
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, description=(
        "The knowledge base to answer from (GET /v1/models); `research:<kb>` runs deep research over it."))
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    tools: list[dict[str, Any]] | None = Field(None, description="Not supported: answered with 400 and the reason.")
    functions: list[dict[str, Any]] | None = Field(None, description="Not supported, like `tools`.")
    sources_footnote: bool | None = Field(
        None, description="Append the cited sources (file name and link) to `content`, for clients that show only "
        "the content; default: the server's SIEVE_CHAT_SOURCES_FOOTNOTE.",
    )


_MARKER = re.compile(r"\[(\d+)\]")


def _annotations(content: str, citations: list[Citation], urls: list[str]) -> list[Annotation]:
    """One `url_citation` per `[n]` marker in `content`, spanning the marker."""
    annotations = []
    for marker in _MARKER.finditer(content):
        n = int(marker.group(1))
        if 1 <= n <= len(citations):
            annotations.append(Annotation(url_citation=UrlCitation(
                url=urls[n - 1], title=citations[n - 1]["filename"], start_index=marker.start(), end_index=marker.end(),
            )))
    return annotations


def _footnote(citations: list[Citation], urls: list[str]) -> str:
    lines = [f"[{n}] {citation['filename']}: {url}" for n, (citation, url) in enumerate(zip(citations, urls), 1)]
    return "\n\n" + "\n".join(lines) if lines else ""


class Reply:
    """What a finished turn becomes on the OpenAI surface: content, annotations, refusal, the `sieve` fields."""

    def __init__(self, done: dict[str, Any], urls: list[str], footnote: bool):
        self.citations: list[Citation] = done.get("citations") or []
        self.answer: str = done.get("answer", "")
        self.footnote = _footnote(self.citations, urls) if footnote else ""
        self.content = self.answer + self.footnote
        self.annotations = _annotations(self.answer, self.citations, urls)
        self.refusal = self.answer if done.get("refused") else None
        self.sieve = SieveFields(**{key: done.get(key) for key in SieveFields.model_fields})


def _count_tokens(state: AppState, texts: list[str]) -> int:
    tokenizer = state.stack.embedder.tokenizer
    return sum(len(tokenizer.offsets(text)) for text in texts if text)


async def _usage(state: AppState, prompt_tokens: int, content: str) -> Usage:
    completion = await asyncio.to_thread(_count_tokens, state, [content])
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion, total_tokens=prompt_tokens + completion)


async def _reply(state: AppState, request: Request, caller: Principal, kb: str, done: dict[str, Any], footnote: bool) -> Reply:
    secret = await asyncio.to_thread(link_secret, state.settings)
    urls = [citation_url(str(request.base_url), secret, caller, kb, c) for c in done.get("citations") or []]
    return Reply(done, urls, footnote)


def _dialogue(request: ChatCompletionRequest) -> tuple[str, list[BaseMessage]]:
    if request.tools or request.functions:
        raise HTTPException(400, "tools are not supported: the model is a knowledge base that answers with citations "
                                 "itself; to give an agent this knowledge base as tools, use GET /v1/tools or /mcp")
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


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"description": "A `chat.completion`, or with `stream: true` an SSE stream of "
                                             "`chat.completion.chunk`s ending with `data: [DONE]`.",
                              "content": {"text/event-stream": {"schema": ChatCompletionChunk.model_json_schema()}}}})
async def chat_completions(
    request: ChatCompletionRequest, http: Request, state: StateDep, caller: PrincipalDep
) -> ChatCompletion | EventSourceResponse:
    question, history = _dialogue(request)
    question = check_question(question, state.settings.max_question_chars)
    # `research:<kb>` runs deep research on the last message (the history is not used)
    kb = request.model.removeprefix(RESEARCH_PREFIX)
    research = kb != request.model
    # a turn is admitted first: until its first chunk is out, running turns make way for it
    arrival = None if research else state.turns.admit()
    try:
        known = await find_kb(state, caller.tenant, kb)
    except BaseException:
        if arrival is not None:
            arrival.gone()
        raise
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    footnote = state.settings.chat_sources_footnote if request.sources_footnote is None else request.sources_footnote

    async def prompt_tokens() -> int:
        return await asyncio.to_thread(_count_tokens, state, [m.text() for m in request.messages])

    if not request.stream:
        done = await (research_once(state, caller, question, kb) if research
                      else ask_once(state, caller, question, kb, history=history, known=known, arrival=arrival))
        reply = await _reply(state, http, caller, kb, done, footnote)
        message = AssistantMessage(content=reply.content, refusal=reply.refusal, annotations=reply.annotations)
        return ChatCompletion(id=completion_id, created=created, model=request.model, choices=[Choice(message=message)],
                              usage=await _usage(state, await prompt_tokens(), reply.content), sieve=reply.sieve)

    def chunk(delta: Delta, finish: Literal["stop"] | None = None, **extra: Any) -> ServerSentEvent:
        payload = ChatCompletionChunk(id=completion_id, created=created, model=request.model,
                                      choices=[ChunkChoice(delta=delta, finish_reason=finish)], **extra)
        return ServerSentEvent(data=payload.model_dump_json(exclude_none=True))

    async def chunks() -> AsyncIterator[ServerSentEvent]:
        try:
            yield chunk(Delta(role="assistant", content=""))
        finally:
            if arrival is not None:
                arrival.first_event()
        try:
            events = (run_research(state, caller, question, kb) if research
                      else run_turn(state, caller, question, kb, history=history, known=known))
            async for event in events:
                if event.type == "token":
                    yield chunk(Delta(content=event.data["text"]))
                elif event.type == "done":
                    reply = await _reply(state, http, caller, kb, event.data, footnote)
                    if reply.footnote:
                        yield chunk(Delta(content=reply.footnote))
                    yield chunk(Delta(refusal=reply.refusal, annotations=reply.annotations), "stop", sieve=reply.sieve)
                    if request.stream_options and request.stream_options.include_usage:
                        usage = await _usage(state, await prompt_tokens(), reply.content)
                        yield ServerSentEvent(data=ChatCompletionChunk(
                            id=completion_id, created=created, model=request.model, choices=[], usage=usage,
                        ).model_dump_json(exclude_none=True))
        except Exception:
            log.exception("chat completion %s failed", completion_id)
            error = {"message": "the answer failed on the server; see its log", "type": "server_error"}
            yield ServerSentEvent(data=json.dumps({"error": error}))
            return
        yield ServerSentEvent(data="[DONE]")

    return EventSourceResponse(chunks(), headers=SSE_HEADERS)


@router.get("/models")
async def list_models(state: StateDep, caller: PrincipalDep) -> ModelList:
    """The knowledge bases this key may ask, as OpenAI models."""
    kbs = await TenantKnowledge(state, caller).knowledge_bases()
    return ModelList(data=[Model(id=kb.name, created=int(kb.created_at.timestamp())) for kb in kbs])


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # `user` and the like are accepted and not needed
    model: str = Field(min_length=1, description="The configured embedder's name (another name gets a 404 naming it).")
    input: str | list[str] | list[int] | list[list[int]] = Field(description="Text, or a list of texts.")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: Literal["query", "passage"] = Field(
        "passage", description="For asymmetric models (e5): embed as search queries or as passages (the default).",
    )


_MAX_EMBEDDING_INPUTS = 2048  # OpenAI's own limit per request


@router.post("/embeddings", response_model=EmbeddingList)
async def embeddings(request: EmbeddingRequest, state: StateDep, tenant: TenantDep) -> EmbeddingList:
    """The server's configured embedder in OpenAI's wire format: the vectors its knowledge bases are searched with."""
    embedder = state.stack.embedder
    if request.model != embedder.name:
        raise HTTPException(404, f"model {request.model!r} is not served here; this server embeds with {embedder.name!r}")
    inputs = [request.input] if isinstance(request.input, str) else request.input
    texts = [text for text in inputs if isinstance(text, str)]
    if not texts or len(texts) != len(inputs):
        raise HTTPException(400, "input must be a text or a non-empty list of texts; token ids belong to another "
                                 "model's tokenizer")
    if len(texts) > _MAX_EMBEDDING_INPUTS:
        raise HTTPException(400, f"input has {len(texts)} texts; the limit is {_MAX_EMBEDDING_INPUTS}")
    for text in texts:
        check_question(text, state.settings.max_embedding_chars, "input text")
    if request.dimensions is not None and request.dimensions != embedder.dim:
        raise HTTPException(400, f"dimensions must be {embedder.dim} (or omitted): {embedder.name} is not shortened")

    def run() -> tuple[np.ndarray, int]:
        embed = embedder.embed_queries if request.input_type == "query" else embedder.embed_passages
        return embed(texts), _count_tokens(state, texts)

    vectors, tokens = await asyncio.to_thread(run)
    vectors = np.asarray(vectors, dtype="<f4")
    data = [
        Embedding(index=i, embedding=base64.b64encode(v.tobytes()).decode() if request.encoding_format == "base64"
                  else v.tolist())
        for i, v in enumerate(vectors)
    ]
    return EmbeddingList(data=data, model=embedder.name, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))
