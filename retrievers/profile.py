"""Retrieval profiles: per-knowledge-base retrieval settings stored as data, effective per request."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sieve.retrievers.fusion import FusionMode

PathName = Literal["bm25", "dense"]


class RetrievalProfile(BaseModel):
    """Everything retrieval does for one knowledge base. Stored in `knowledge_bases.profile`."""

    model_config = ConfigDict(extra="forbid")

    paths: list[PathName] = Field(default_factory=lambda: ["bm25", "dense"], min_length=1)
    fusion: FusionMode = FusionMode.RRF
    rrf_k: int = Field(60, ge=1)
    weights: dict[str, float] = Field(default_factory=lambda: {"bm25": 1.0, "dense": 1.0})
    path_top_k: int = Field(100, ge=1, le=1000, description="candidates each path returns")
    top_k: int = Field(10, ge=1, le=200, description="hits returned after fusion")
    path_budget_ms: int = Field(1500, ge=1, description="time budget of each path, query embedding included")

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> RetrievalProfile:
        return cls.model_validate(stored or {})

    def merged(self, **overrides: Any) -> RetrievalProfile:
        """A copy with the given fields replaced, validated like a stored profile."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return RetrievalProfile.model_validate(data)
