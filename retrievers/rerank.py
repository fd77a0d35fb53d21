"""Rerankers: query-passage relevance for the fused top-N, behind one protocol.

Each provider's scores live on its own scale (cosine for `embedding`, a sigmoid probability for
cross-encoders), so the relevance threshold is calibrated per provider (`sieve eval calibrate`)
and stored in the knowledge base's profile next to the provider it was calibrated for.

Which model or endpoint backs a kind is deployment configuration (`SIEVE_RERANKER_*`), never
profile data: a tenant who can edit a profile cannot point the server at a URL or a folder.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx
import numpy as np

from sieve.errors import ConfigurationError
from sieve.models.embedding import Embedder
from sieve.retrievers.faults import Faults
from sieve.retrievers.types import Hit
from sieve.settings import Settings
from sieve.stores.embedding_cache import EmbeddingCache, embed_passages_cached

if TYPE_CHECKING:
    from sieve.models.guarded_embedder import GuardedEmbedder
    from sieve.retrievers.paths import Lanes
    from sieve.stores.stack import Stack


class RerankerKind(StrEnum):
    NONE = "none"  # fused order; relevance is the embedding cosine, not reordered
    EMBEDDING = "embedding"  # reorder the fused top-N by query-passage embedding cosine
    FLAG = "flag"  # a local cross-encoder folder through FlagEmbedding (bge-reranker-v2-m3, fine-tuned MiniLM)
    RERANK_API = "rerank_api"  # an OpenAI-compatible/vLLM `/rerank` endpoint (Jina/Cohere wire format)
    SCORE_API = "score_api"  # a vLLM `/score` endpoint


class RerankMode(StrEnum):
    """How the reranker's scores order the fused head.

    `replace` sorts by the reranker alone. `rrf` adds its rank to the fused rank (reciprocal rank
    fusion, the profile's `rrf_k`): a reranker fine-tuned on a few hundred queries knows things the
    fused order does not, but alone it is noisier than the order it reranks (bench/bench_rerank.py).
    """

    REPLACE = "replace"
    RRF = "rrf"


def reranked_order(scores: Sequence[float], mode: RerankMode, rrf_k: int = 60) -> list[int]:
    """Indices of the fused head (given best first) in their new order."""
    by_score = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    if mode is RerankMode.REPLACE:
        return by_score
    rerank_rank = {i: rank for rank, i in enumerate(by_score)}
    return sorted(range(len(scores)), key=lambda i: 1 / (rrf_k + i) + 1 / (rrf_k + rerank_rank[i]), reverse=True)


def reranked_head(hits: Sequence[Hit], scores: Sequence[float], mode: RerankMode, rrf_k: int = 60) -> list[Hit]:
    """`hits` with the first `len(scores)` (the scored head) carrying their score as relevance and in
    the reranked order; hits past the head keep fused order and carry no relevance (another scale)."""
    head = list(hits[: len(scores)])
    for hit, score in zip(head, scores):
        hit.relevance = score
    return [head[i] for i in reranked_order(scores, mode, rrf_k)] + list(hits[len(head):])


@runtime_checkable
class Reranker(Protocol):
    """Scores of `texts` for `query`, one per text in order; higher is more relevant."""

    name: str

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]: ...

    def close(self) -> None: ...


class LocalReranker:
    """A CPU model: `ascore` runs `score` on one worker, so reranks queue instead of piling up threads."""

    name = "local"

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sieve-rerank-{self.name}")

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        raise NotImplementedError

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.score, query, list(texts))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class EmbeddingReranker(LocalReranker):
    """Cosine of the query and passage embeddings; passage vectors come from the ingest cache when
    there (every ingested chunk is), and passages embedded here are added to it."""

    name = "embedding"

    def __init__(self, embedder: Embedder, cache: EmbeddingCache | None = None):
        super().__init__()
        self.embedder = embedder
        self.cache = cache

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        if self.cache is not None:
            vectors, _ = embed_passages_cached(self.embedder, self.cache, list(texts))
        else:
            vectors = self.embedder.embed_passages(list(texts))
        scores: list[float] = (vectors @ self.embedder.embed_queries([query])[0]).astype(float).tolist()
        return scores


class FlagCrossEncoder(LocalReranker):
    """A cross-encoder folder (config.json, weights, tokenizer) scored by FlagEmbedding's `FlagReranker`.

    Scores are sigmoid-normalised to 0..1, so a threshold carries over between queries.
    """

    name = "flag"

    def __init__(self, model_path: Path, batch_size: int = 32, max_length: int = 512):
        folder = Path(model_path).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"reranker model folder {folder} has no config.json (models are never downloaded; "
                "point SIEVE_RERANKER_MODEL_PATH at a local folder)"
            )
        try:
            from FlagEmbedding import FlagReranker
        except ImportError as exc:
            raise ImportError("the flag reranker needs FlagEmbedding and torch: pip install 'sieve-rag[flag]'") from exc
        super().__init__()
        # pairs longer than the model's positions fail inside FlagEmbedding instead of being truncated
        positions = json.loads((folder / "config.json").read_text()).get("max_position_embeddings", max_length)
        # devices="cpu": FlagEmbedding would otherwise spread work over every GPU it finds
        self._model: Any = FlagReranker(str(folder), use_fp16=False, batch_size=batch_size,
                                        max_length=min(max_length, positions), normalize=True, devices="cpu")
        self.name = f"flag:{folder.name}"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        scores = self._model.compute_score([(query, t) for t in texts], normalize=True)
        out: list[float] = np.atleast_1d(np.asarray(scores, dtype=float)).tolist()
        return out


class EndpointReranker:
    """vLLM's `/rerank` (`{query, documents}` → `results[].relevance_score`) or `/score`
    (`{text_1, text_2}` → `data[].score`), the same wire format other OpenAI-compatible servers use."""

    def __init__(self, base_url: str, model: str, kind: RerankerKind, api_key: str = "EMPTY", timeout_s: float = 30.0):
        if kind not in (RerankerKind.RERANK_API, RerankerKind.SCORE_API):
            raise ValueError(f"{kind} is not an endpoint reranker")
        self.kind = kind
        self.model = model
        self.url = base_url.rstrip("/") + ("/rerank" if kind is RerankerKind.RERANK_API else "/score")
        self.name = f"{kind.value}:{model}"
        headers = {"Authorization": f"Bearer {api_key}"}
        self._client = httpx.Client(headers=headers, timeout=timeout_s)
        self._aclient = httpx.AsyncClient(headers=headers, timeout=timeout_s)

    def _body(self, query: str, texts: Sequence[str]) -> dict[str, Any]:
        if self.kind is RerankerKind.RERANK_API:
            return {"model": self.model, "query": query, "documents": list(texts), "top_n": len(texts)}
        return {"model": self.model, "text_1": query, "text_2": list(texts)}

    def _scores(self, response: httpx.Response, n: int) -> list[float]:
        response.raise_for_status()
        payload = response.json()
        scores = [float("nan")] * n
        # results come back sorted by score; `index` points into what we sent
        if self.kind is RerankerKind.RERANK_API:
            for item in payload["results"]:
                scores[item["index"]] = float(item["relevance_score"])
        else:
            for item in payload["data"]:
                scores[item["index"]] = float(item["score"])
        if any(s != s for s in scores):
            raise ValueError(f"{self.url} scored {sum(s == s for s in scores)} of {n} texts")
        return scores

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return self._scores(self._client.post(self.url, json=self._body(query, texts)), len(texts))

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return self._scores(await self._aclient.post(self.url, json=self._body(query, texts)), len(texts))

    def close(self) -> None:
        self._client.close()
        # the async client's connections go with the loop that opened them


def build_reranker(kind: RerankerKind, settings: Settings, embedder: Embedder | None = None,
                   cache: EmbeddingCache | None = None) -> Reranker | None:
    """The provider of `kind` from deployment settings; None for `none`."""
    if kind is RerankerKind.NONE:
        return None
    if kind is RerankerKind.EMBEDDING:
        if embedder is None:
            raise ValueError("the embedding reranker needs an embedder")
        return EmbeddingReranker(embedder, cache)
    require_configured(kind, settings)
    if kind is RerankerKind.FLAG:
        assert settings.reranker_model_path is not None
        return FlagCrossEncoder(settings.reranker_model_path, max_length=settings.reranker_max_length)
    assert settings.reranker_base_url is not None
    return EndpointReranker(settings.reranker_base_url, settings.reranker_model, kind, settings.reranker_api_key)


def missing_setting(kind: RerankerKind, settings: Settings) -> str | None:
    """What the deployment must set for a reranker of `kind` and does not (None: nothing missing)."""
    if kind is RerankerKind.FLAG and settings.reranker_model_path is None:
        return "SIEVE_RERANKER_MODEL_PATH (a local cross-encoder folder)"
    if kind in (RerankerKind.RERANK_API, RerankerKind.SCORE_API) and not settings.reranker_base_url:
        return "SIEVE_RERANKER_BASE_URL (e.g. http://vllm:8000/v1)"
    return None


def require_configured(kind: RerankerKind, settings: Settings) -> None:
    """Raises `ConfigurationError` naming the setting a reranker of `kind` needs and the deployment lacks."""
    missing = missing_setting(kind, settings)
    if missing is not None:
        raise ConfigurationError(f"reranker={kind.value} needs {missing}")


class Rerankers:
    """The reranker of each kind a profile names, built on first use and kept (loading a model is
    start-up cost, outside any query's budget), with each kind's latest outcome for readiness reports."""

    def __init__(self, stack: Stack, embedder: Embedder | GuardedEmbedder, faults: Faults, lanes: Lanes):
        self.stack, self.embedder, self.faults, self.lanes = stack, embedder, faults, lanes
        self._built: dict[RerankerKind, Reranker | None] = {}
        self.health: dict[str, str] = {}  # kind -> `ok`, `error` or `timeout`

    async def get(self, kind: RerankerKind) -> Reranker | None:
        """The reranker of `kind` (`SIEVE_FAULTS`' reranker fault applied); None for `none`. Raises when it cannot be built."""
        if kind is RerankerKind.NONE:
            return None
        if kind not in self._built:
            built = await self.lanes.run(build_reranker, kind, self.stack.settings, self.embedder,
                                         self.stack.embedding_cache)
            if isinstance(built, LocalReranker):
                await built.ascore("warm-up", ["warm-up"])
            self._built[kind] = built
        return self.faults.wrap("reranker", self._built[kind], ("score", "ascore"))

    def close(self) -> None:
        for reranker in self._built.values():
            if reranker is not None:
                reranker.close()
