"""OpenAI's wire shapes for what the server returns (chat completions, chunks, embeddings), as pydantic
models: the responses are validated against them and OpenAPI shows each 200 body.

Only the fields this server fills are modelled; OpenAI clients treat the others as absent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class UrlCitation(BaseModel):
    url: str = Field(description="Opens the cited chunk on this server.")
    title: str = Field(description="The cited document's file name.")
    start_index: int = Field(description="Where the citation marker `[n]` starts in `content`.")
    end_index: int = Field(description="Where it ends (exclusive).")


class Annotation(BaseModel):
    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitation


class Usage(BaseModel):
    """Tokens as the configured embedder's tokenizer counts them (the graph's own model, if any, is not billed)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The answer with `[n]` markers, the reply, or the refusal said to the user.")
    refusal: str | None = Field(None, description="Set (to the same text) when the graph declined to answer.")
    annotations: list[Annotation] = Field(default_factory=list, description="One `url_citation` per `[n]` marker.")


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class SieveFields(BaseModel):
    """What OpenAI's schema has no field for: the route, the rewritten query, citations with their quotes,
    degraded steps, the refusal's reason and timings."""

    route: str | None = None
    rewritten_query: str | None = None
    citations: list[dict[str, Any]] | None = None
    degraded: list[str] | None = None
    refused: bool | None = None
    refusal_reason: str | None = None
    timings_ms: dict[str, float] | None = None
    research: dict[str, Any] | None = Field(None, description=(
        "Deep research only (`model` = `research:<kb>`): stop_reason, steps_used, plan, steps, sections, refused_parts."))


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="The knowledge base that answered.")
    choices: list[Choice]
    usage: Usage
    sieve: SieveFields


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    annotations: list[Annotation] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One SSE `data:` line of a streamed completion. The final chunk carries `finish_reason`, the
    annotations, the refusal and `sieve`; with `stream_options.include_usage` one more chunk, with no
    choices, carries `usage`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    sieve: SieveFields | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="The vector, or base64 of its little-endian float32 bytes.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class Model(BaseModel):
    id: str = Field(description="A knowledge base's name: the `model` to ask it.")
    object: Literal["model"] = "model"
    created: int = Field(description="When the knowledge base was created (Unix seconds).")
    owned_by: str = "sieve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
