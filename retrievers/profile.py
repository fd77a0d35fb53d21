"""Retrieval profiles: per-knowledge-base retrieval settings stored as data, effective per request.

The API's PUT and `sieve profile set` both validate through this model, so a profile that is
stored is one retrieval can run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sieve.errors import ConfigurationError, InvalidInput
from sieve.retrievers.fusion import FusionMode, FusionNorm
from sieve.retrievers.rerank import RerankerKind, RerankMode, missing_setting
from sieve.settings import Settings
from sieve.stores.metadata import KnowledgeBase

PathName = Literal["bm25", "dense", "graph", "image"]
PATH_NAMES: tuple[str, ...] = get_args(PathName)
HOUR_MS = 3_600_000  # the longest budget: `unbounded()` uses it
# every number is finite and in range, so whatever the API returns it accepts back (JSON has no NaN)
Weight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Budget = Annotated[int, Field(ge=1, le=HOUR_MS)]

log = logging.getLogger(__name__)


class RetrievalProfile(BaseModel):
    """Everything retrieval does for one knowledge base. Stored in `knowledge_bases.profile`."""

    model_config = ConfigDict(extra="forbid")

    paths: list[PathName] = Field(default_factory=lambda: list[PathName](["bm25", "dense"]), min_length=1)
    # the defaults were chosen on the development sets (SciFact, RGB Chinese news) by bench/bench_fusion.py
    fusion: FusionMode = FusionMode.WEIGHTED
    fusion_norm: FusionNorm = Field(FusionNorm.MINMAX, description="weighted fusion: each path's scores scaled by "
                                    "minmax or zscore first (`sieve eval tune` picks mode, norm, weights, rrf_k)")
    rrf_k: int = Field(60, ge=1, le=10_000)
    weights: dict[str, Weight] = Field(default_factory=lambda: {"bm25": 1.0, "dense": 1.5},
                                       description="per path, 0-1000 (weighted fusion and RRF)")
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
        None, allow_inf_nan=False, description="relevance below which grading drops a passage, calibrated for `reranker` "
        "(`sieve eval calibrate`); unset = the graph's cosine default"
    )
    embed_budget_ms: Budget = Field(1000, description="time budget of the query embedding (inside the dense path)")
    path_budget_ms: Budget = Field(1500, description="time budget of each path, query embedding included")
    rerank_budget_ms: Budget = Field(1500, description="time budget of the reranker")
    total_budget_ms: Budget = Field(3000, description="the whole retrieval; every stage gets at most what is left")
    research_budget_ms: Budget = Field(
        15000, description="deep research: the whole run (plan, every step, the report); a stuck step is abandoned at it"
    )
    max_steps: int = Field(4, ge=1, le=20, description="deep research: retrieval rounds at most")
    embedding_model: str | None = Field(
        None, description="folder of the KB's own embedder (`sieve finetune embedder`); `sieve kb reembed` sets it "
        "once the KB's chunks are embedded with it; unset = the deployment's embedder"
    )

    @field_validator("embedding_model")
    @classmethod
    def _model_folder(cls, folder: str | None) -> str | None:
        if folder is None:
            return None
        from sieve.models.tuned_embedder import read_model_folder

        read_model_folder(Path(folder), verify=False)  # the graph's checksum is checked when it loads
        return str(Path(folder).resolve())

    @model_validator(mode="after")
    def _known_weights(self) -> RetrievalProfile:
        unknown = set(self.weights) - set(PATH_NAMES)
        if unknown:
            raise ValueError(f"weights name unknown paths: {', '.join(sorted(unknown))} (paths: {', '.join(PATH_NAMES)})")
        return self

    def require_deployable(self, settings: Settings) -> None:
        """Raises `InvalidInput` when the profile asks for a model this deployment has not configured:
        refused when it is set, instead of degrading every query later."""
        missing = missing_setting(self.reranker, settings)
        if missing is not None:
            raise InvalidInput(f"reranker={self.reranker.value} needs {missing}, which this deployment does not "
                               "set: choose another reranker, or set it first")

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> RetrievalProfile:
        """The stored profile; a field stored before its check existed (a NaN weight) takes its default,
        with a warning, instead of failing every query on the knowledge base."""
        try:
            return cls.model_validate(stored or {})
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if not bad:
                raise
            log.warning("stored retrieval profile: invalid %s, using the default instead (%s)",
                        ", ".join(sorted(bad)), exc.errors()[0]["msg"])
            return cls.model_validate({k: v for k, v in (stored or {}).items() if k not in bad})

    def merged(self, **overrides: Any) -> RetrievalProfile:
        """A copy with the given fields replaced, validated like a stored profile."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return RetrievalProfile.model_validate(data)

    def unbounded(self) -> RetrievalProfile:
        """A copy whose stages never time out: for measuring quality apart from speed."""
        return self.merged(embed_budget_ms=HOUR_MS, path_budget_ms=HOUR_MS, rerank_budget_ms=HOUR_MS,
                           total_budget_ms=HOUR_MS)

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
                raise InvalidInput(f"{assignment!r} is not key=value")
            field, _, sub = key.partition(".")
            if field not in RetrievalProfile.model_fields:
                raise InvalidInput(f"unknown profile field {field!r} (fields: {', '.join(RetrievalProfile.model_fields)})")
            if sub:
                data[field] = {**(data.get(field) or {}), sub: _value(raw)}
            elif field == "paths":
                data[field] = [p.strip() for p in raw.split(",") if p.strip()]
            else:
                data[field] = _value(raw)
        return RetrievalProfile.model_validate(data)


def require_deployable_profiles(sessions: sessionmaker[Session], settings: Settings) -> None:
    """Raises `ConfigurationError` when a stored profile needs a model the deployment has not configured
    (a setting removed since the profile was set): a server refuses to start rather than degrade every
    query on that knowledge base. The message names the setting and each knowledge base that needs it."""
    with sessions() as session:
        stored = session.execute(select(KnowledgeBase.name, KnowledgeBase.tenant_id, KnowledgeBase.profile)).all()
    needing: dict[str, list[str]] = {}
    for name, tenant, data in stored:
        profile = RetrievalProfile.from_stored(data)
        missing = missing_setting(profile.reranker, settings)
        if missing is not None:
            needing.setdefault(f"reranker={profile.reranker.value} needs {missing}", []).append(
                f"{name!r} (tenant {tenant}: `sieve profile set --kb {name} --tenant {tenant} reranker=none`)")
    if needing:
        raise ConfigurationError("; ".join(f"{need}, which is not set, for the profile of knowledge base "
                                           f"{', '.join(kbs)}" for need, kbs in needing.items())
                                 + ": set it, or change the profile")


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
