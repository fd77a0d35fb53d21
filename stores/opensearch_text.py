"""The production text index: OpenSearch through opensearch-py, BM25 over an English and a Chinese field.

Chinese is segmented by the cluster's IK or smartcn plugin when it has one; otherwise we send text
pre-tokenised with the same jieba analysis as the embedded tantivy index, under a whitespace analyzer.
The choice is recorded in the index's `_meta`, so later processes query the way the index was built.
Request bodies are built by pure functions below; the class only sends them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import RequestError

from sieve.errors import ConfigurationError
from sieve.stores.analysis import pretokenize
from sieve.stores.types import IndexedChunk, ScoredChunk, SearchFilter

if TYPE_CHECKING:
    from sieve.settings import Settings

log = logging.getLogger(__name__)

ChineseAnalysis = Literal["ik", "smartcn", "jieba"]

_ZH_FIELD: dict[ChineseAnalysis, dict[str, str]] = {
    "ik": {"analyzer": "ik_max_word", "search_analyzer": "ik_smart"},
    "smartcn": {"analyzer": "smartcn"},
    "jieba": {"analyzer": "sieve_pretokenised"},
}
_SOURCE_OUT = ["chunk_id", "doc_id"]
# bulk retries cover 429 (queue full) answers; connection errors are retried by the client itself
_BULK: dict[str, Any] = {"max_retries": 3, "initial_backoff": 1, "chunk_size": 500, "refresh": "wait_for"}


def chinese_analysis(plugin_components: Iterable[str]) -> ChineseAnalysis:
    """IK if installed, else smartcn, else our jieba pre-tokenisation (components from `_cat/plugins`)."""
    components = set(plugin_components)
    if any("analysis-ik" in c for c in components):
        return "ik"
    if any("analysis-smartcn" in c for c in components):
        return "smartcn"
    return "jieba"


def index_template(pattern: str, zh: ChineseAnalysis, knn_dim: int | None = None) -> dict[str, Any]:
    """The composable index template: keyword filter fields, both text fields, optional k-NN vector."""
    settings: dict[str, Any] = {}
    if zh == "jieba":
        settings["analysis"] = {
            "analyzer": {"sieve_pretokenised": {"type": "custom", "tokenizer": "whitespace", "filter": ["lowercase"]}}
        }
    properties: dict[str, Any] = {
        **{field: {"type": "keyword"} for field in ("chunk_id", "doc_id", "tenant", "kb", "acl")},
        "text": {"type": "text", "analyzer": "standard"},
        "text_zh": {"type": "text", **_ZH_FIELD[zh]},
    }
    if knn_dim is not None:
        settings["index"] = {"knn": True}
        # lucene's HNSW applies the filter during graph search (efficient filtering), not afterwards
        properties["embedding"] = {
            "type": "knn_vector",
            "dimension": knn_dim,
            "method": {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"},
        }
    return {
        "index_patterns": [pattern],
        "priority": 100,
        "template": {
            "settings": settings,
            "mappings": {"dynamic": "strict", "_meta": {"zh_analysis": zh}, "properties": properties},
        },
    }


def filter_query(flt: SearchFilter) -> dict[str, Any]:
    """Tenant, knowledge base and allow-list as non-scoring `bool.filter` clauses."""
    clauses: list[dict[str, Any]] = [{"term": {"tenant": flt.tenant}}, {"term": {"kb": flt.kb}}]
    if flt.doc_ids is not None:
        clauses.append({"terms": {"doc_id": sorted(flt.doc_ids)}})
    if flt.readers is not None:
        clauses.append({"terms": {"acl": sorted(flt.readers)}})
    return {"bool": {"filter": clauses}}


def search_body(query: str, flt: SearchFilter, k: int, zh: ChineseAnalysis) -> dict[str, Any]:
    """BM25 over both text fields, inside the filter."""
    zh_query = pretokenize(query) if zh == "jieba" else query
    scoped = filter_query(flt)
    scoped["bool"] |= {
        "should": [{"match": {"text": query}}, {"match": {"text_zh": zh_query}}],
        "minimum_should_match": 1,
    }
    return {"size": k, "_source": _SOURCE_OUT, "track_total_hits": False, "query": scoped}


def knn_body(vector: np.ndarray, flt: SearchFilter, k: int) -> dict[str, Any]:
    vector_list = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
    knn = {"vector": vector_list, "k": k, "filter": filter_query(flt)}
    return {"size": k, "_source": _SOURCE_OUT, "query": {"knn": {"embedding": knn}}}


def delete_body(tenant: str, kb: str, doc_ids: Sequence[str]) -> dict[str, Any]:
    return {"query": filter_query(SearchFilter(tenant, kb, frozenset(doc_ids)))}


def acl_actions(index: str, chunks: Sequence[IndexedChunk]) -> list[dict[str, Any]]:
    """Partial updates that rewrite only the chunks' access lists (text and vectors stay)."""
    return [
        {"_op_type": "update", "_index": index, "_id": document_id(c), "doc": {"acl": list(c.acl)}} for c in chunks
    ]


def document_id(chunk: IndexedChunk) -> str:
    # chunk ids are only unique inside a knowledge base; the index holds every tenant's
    return hashlib.blake2b("\0".join((chunk.tenant, chunk.kb, chunk.chunk_id)).encode(), digest_size=16).hexdigest()


def bulk_actions(
    index: str, chunks: Sequence[IndexedChunk], zh: ChineseAnalysis, vectors: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Index (overwrite) actions; `text_zh` carries jieba terms when the cluster cannot segment Chinese."""
    if vectors is not None and len(vectors) != len(chunks):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
    actions = []
    for i, chunk in enumerate(chunks):
        source: dict[str, Any] = {
            "chunk_id": chunk.chunk_id,
            "doc_id": chunk.doc_id,
            "tenant": chunk.tenant,
            "kb": chunk.kb,
            "acl": list(chunk.acl),
            "text": chunk.text,
            "text_zh": pretokenize(chunk.text) if zh == "jieba" else chunk.text,
        }
        if vectors is not None:
            source["embedding"] = np.asarray(vectors[i], dtype=np.float32).tolist()
        actions.append({"_op_type": "index", "_index": index, "_id": document_id(chunk), "_source": source})
    return actions


def _hits(response: dict[str, Any]) -> list[ScoredChunk]:
    return [
        ScoredChunk(chunk_id=h["_source"]["chunk_id"], doc_id=h["_source"]["doc_id"], score=float(h["_score"]))
        for h in response["hits"]["hits"]
    ]


class OpenSearchTextIndex:
    """`TextIndex` on OpenSearch (the serving path calls it off the event loop, like every index).

    Opening creates the index template and the index `{prefix}-chunks` when missing. With `knn_dim`,
    chunks may carry embeddings and `search_knn` runs filtered k-NN on the same index.
    """

    def __init__(
        self,
        client: OpenSearch,
        *,
        prefix: str = "sieve",
        knn_dim: int | None = None,
    ):
        self.client = client
        self.index = f"{prefix}-chunks"
        self.knn_dim = knn_dim
        self.zh = self._open()

    @classmethod
    def from_settings(cls, settings: Settings, knn_dim: int | None = None) -> OpenSearchTextIndex:
        if not settings.opensearch_url:
            raise ConfigurationError("text_backend=opensearch needs SIEVE_OPENSEARCH_URL")
        auth = (settings.opensearch_username, settings.opensearch_password or "")
        options: dict[str, Any] = {
            "hosts": [settings.opensearch_url],
            "http_auth": auth if settings.opensearch_username else None,
            "verify_certs": settings.opensearch_verify_certs,
            "retry_on_timeout": True,
            "max_retries": 3,
        }
        return cls(
            OpenSearch(**options),
            prefix=settings.opensearch_index_prefix,
            knn_dim=knn_dim,
        )

    def _open(self) -> ChineseAnalysis:
        indices = self.client.indices
        if not indices.exists(index=self.index):
            plugins = self.client.cat.plugins(format="json")
            zh = chinese_analysis(p["component"] for p in plugins)
            indices.put_index_template(name=self.index, body=index_template(f"{self.index}*", zh, self.knn_dim))
            try:
                indices.create(index=self.index)
            except RequestError as e:  # another worker created it first
                if e.error != "resource_already_exists_exception":
                    raise
        # the index, not today's plugin list, decides how its Chinese field is queried
        mapping = next(iter(indices.get_mapping(index=self.index).values()))["mappings"]
        zh = mapping.get("_meta", {}).get("zh_analysis")
        if zh not in _ZH_FIELD:
            raise ConfigurationError(f"index {self.index} exists but was not created by Sieve (no zh_analysis in _meta)")
        if "acl" not in mapping.get("properties", {}):  # an index made before access lists (its mapping is strict)
            indices.put_mapping(index=self.index, body={"properties": {"acl": {"type": "keyword"}}})
        return cast(ChineseAnalysis, zh)

    # --- sync (TextIndex) ---

    def add(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray | None = None) -> None:
        helpers.bulk(self.client, self._actions(chunks, vectors), **_BULK)

    def set_acl(self, chunks: Sequence[IndexedChunk]) -> None:
        helpers.bulk(self.client, acl_actions(self.index, chunks), **_BULK)

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        if doc_ids:  # an empty list must delete nothing, not match everything
            self.client.delete_by_query(
                index=self.index, body=delete_body(tenant, kb, doc_ids), refresh=True, conflicts="proceed"
            )

    def search(self, query: str, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        if flt.allows_nothing():
            return []
        return _hits(self.client.search(index=self.index, body=search_body(query, flt, k, self.zh)))

    def search_knn(self, vector: np.ndarray, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        if flt.allows_nothing():
            return []
        return _hits(self.client.search(index=self.index, body=knn_body(vector, flt, k)))

    def count(self, flt: SearchFilter) -> int:
        if flt.allows_nothing():
            return 0
        return int(self.client.count(index=self.index, body={"query": filter_query(flt)})["count"])

    def health(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:  # any transport error means "not serving"
            log.warning("OpenSearch health check failed", exc_info=True)
            return False

    def close(self) -> None:
        self.client.close()

    def _actions(self, chunks: Sequence[IndexedChunk], vectors: np.ndarray | None) -> list[dict[str, Any]]:
        if vectors is not None and self.knn_dim is None:
            raise ValueError("this index has no k-NN field; open it with knn_dim to store vectors")
        return bulk_actions(self.index, chunks, self.zh, vectors)
