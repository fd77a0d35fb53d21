"""Retrieval profiles: per-knowledge-base retrieval settings stored as data, effective per request.

The API's PUT and `sieve profile set` both validate through this model, so a profile that is
stored is one retrieval can run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sieve.retrievers.fusion import FusionMode
from sieve.retrievers.rerank import RerankerKind, RerankMode

PathName = Literal["bm25", "dense", "graph"]
PATH_NAMES: tuple[str, ...] = get_args(PathName)


class RetrievalProfile(BaseModel):
    """Everything retrieval does for one knowledge base. Stored in `knowledge_bases.profile`."""

    model_config = ConfigDict(extra="forbid")

    paths: list[PathName] = Field(default_factory=lambda: ["bm25", "dense"], min_length=1)
    fusion: FusionMode = FusionMode.RRF
    rrf_k: int = Field(60, ge=1)
    weights: dict[str, float] = Field(default_factory=lambda: {"bm25": 1.0, "dense": 1.0})
    path_top_k: int = Field(100, ge=1, le=1000, description="candidates each path returns")
    graph_hops: int = Field(2, ge=1, le=4, description="relations the graph path follows from the query's entities")
    graph_extraction: bool = Field(
        False, description="extract entities and relations from new chunks at ingest (what the graph path searches)"
    )
    top_k: int = Field(10, ge=1, le=200, description="hits returned after fusion")
    reranker: RerankerKind = Field(RerankerKind.NONE, description="re-scores the fused top `rerank_top_n`")
    rerank_top_n: int = Field(20, ge=1, le=200, description="fused candidates the reranker scores; later hits keep fused order")
    rerank_mode: RerankMode = Field(
        RerankMode.REPLACE, description="replace = reranker order; rrf = reranker rank fused with the fused rank"
    )
    relevance_threshold: float | None = Field(
        None, description="relevance below which grading drops a passage, calibrated for `reranker` "
        "(`sieve eval calibrate`); unset = the graph's cosine default"
    )
    embed_budget_ms: int = Field(1000, ge=1, description="time budget of the query embedding (inside the dense path)")
    path_budget_ms: int = Field(1500, ge=1, description="time budget of each path, query embedding included")
    rerank_budget_ms: int = Field(1500, ge=1, description="time budget of the reranker")
    total_budget_ms: int = Field(3000, ge=1, description="the whole retrieval; every stage gets at most what is left")

    @model_validator(mode="after")
    def _known_weights(self) -> RetrievalProfile:
        unknown = set(self.weights) - set(PATH_NAMES)
        if unknown:
            raise ValueError(f"weights name unknown paths: {', '.join(sorted(unknown))} (paths: {', '.join(PATH_NAMES)})")
        return self

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> RetrievalProfile:
        return cls.model_validate(stored or {})

    def merged(self, **overrides: Any) -> RetrievalProfile:
        """A copy with the given fields replaced, validated like a stored profile."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return RetrievalProfile.model_validate(data)

    def unbounded(self) -> RetrievalProfile:
        """A copy whose stages never time out: for measuring quality apart from speed."""
        hour = 3_600_000
        return self.merged(embed_budget_ms=hour, path_budget_ms=hour, rerank_budget_ms=hour, total_budget_ms=hour)

    def assigned(self, assignments: Iterable[str]) -> RetrievalProfile:
        """A copy with `key=value` assignments applied (the CLI's `sieve profile set`).

        Lists are comma-separated (`paths=bm25,dense`), one weight is `weights.dense=0.5`,
        `null` unsets an optional field; anything else is parsed as JSON, falling back to text.
        """
        data = self.model_dump(mode="json")
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep or not key:
                raise ValueError(f"{assignment!r} is not key=value")
            field, _, sub = key.partition(".")
            if field not in RetrievalProfile.model_fields:
                raise ValueError(f"unknown profile field {field!r} (fields: {', '.join(RetrievalProfile.model_fields)})")
            if sub:
                data[field] = {**(data.get(field) or {}), sub: _value(raw)}
            elif field == "paths":
                data[field] = [p.strip() for p in raw.split(",") if p.strip()]
            else:
                data[field] = _value(raw)
        return RetrievalProfile.model_validate(data)


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
