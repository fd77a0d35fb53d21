"""Embedded BM25 text index on tantivy, with jieba-segmented Chinese and stemmed English.

Text is pre-tokenised by `sieve.stores.analysis` (jieba search mode, lowercase, no punctuation) and
indexed under a whitespace + lowercase + English-stemmer analyzer; queries go through the same two
steps and become a disjunction of term queries, so user text never meets tantivy's query parser.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import tantivy

from sieve.stores.analysis import pretokenize
from sieve.stores.types import EngineBusy, IndexedChunk, ScoredChunk, SearchFilter

log = logging.getLogger(__name__)

_ANALYZER = "sieve_zh_en"
# tantivy rejects terms over 65,530 bytes; no real word comes near 64, pasted blobs might
_MAX_TOKEN_BYTES = 64
_WRITER_HEAP_BYTES = 128_000_000


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for name, stored in (("chunk_id", True), ("doc_id", True), ("tenant", False), ("kb", False)):
        builder.add_text_field(name, stored=stored, tokenizer_name="raw", index_option="basic")
    # one value per access-list entry of the chunk's document
    builder.add_text_field("acl", stored=False, tokenizer_name="raw", index_option="basic")
    # BM25 needs term frequencies, not positions: we never run phrase queries
    builder.add_text_field("text", tokenizer_name=_ANALYZER, index_option="freq")
    return builder.build()


def _analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
        .filter(tantivy.Filter.remove_long(_MAX_TOKEN_BYTES))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


class TextIndexOutdated(RuntimeError):
    """The folder holds an index of an older schema (before access lists): rebuild it from the metadata DB."""


class TantivyTextIndex:
    """`TextIndex` over one tantivy folder; one instance per folder per process.

    The instance holds tantivy's writer lock for its lifetime: a second opener of the same folder (in
    this process or another) gets a RuntimeError. Writes are serialised; searches may run from any
    number of threads and see every write that has returned.
    """

    def __init__(self, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._schema = _schema()
        self._analyzer = _analyzer()
        try:
            self._index = tantivy.Index(self._schema, str(path), reuse=True)
        except ValueError as exc:
            if "schema does not match" in str(exc):
                raise TextIndexOutdated(f"text index {path} was written by an older release") from exc
            raise
        self._index.register_tokenizer(_ANALYZER, self._analyzer)
        # every write reloads explicitly, so no file watcher is needed
        self._index.config_reader(reload_policy="manual")
        try:
            self._writer: tantivy.IndexWriter | None = self._index.writer(_WRITER_HEAP_BYTES)
        except ValueError as exc:
            raise EngineBusy(f"text index {path} is already open in another process or object") from exc
        self._write_lock = threading.Lock()

    def add(self, chunks: Sequence[IndexedChunk]) -> None:
        """Index (or replace, by chunk_id) the chunks; durable and searchable when this returns."""
        if not chunks:
            return
        with self._writing() as writer:
            for chunk in chunks:
                # chunk ids are global keys: re-adding a chunk replaces it, like a vector upsert
                writer.delete_documents_by_term("chunk_id", chunk.chunk_id)
                writer.add_document(
                    tantivy.Document(
                        chunk_id=chunk.chunk_id,
                        doc_id=chunk.doc_id,
                        tenant=chunk.tenant,
                        kb=chunk.kb,
                        acl=list(chunk.acl),
                        text=pretokenize(chunk.text),
                    )
                )

    def set_acl(self, chunks: Sequence[IndexedChunk]) -> None:
        """The chunks' access lists changed: tantivy updates no field in place, so each chunk is
        written again from its text (analysis only, nothing is embedded)."""
        self.add(chunks)

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        scope = self._filter_query(SearchFilter(tenant, kb, frozenset(doc_ids)))
        with self._writing() as writer:
            writer.delete_documents_by_query(scope)

    def search(self, query: str, flt: SearchFilter, k: int) -> list[ScoredChunk]:
        """BM25 top-k, best first; text that analyses to no terms finds nothing."""
        terms = self._query_terms(query)
        if k <= 0 or not terms or flt.allows_nothing():
            return []
        match = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "text", t, index_option="freq"))
                for t in terms
            ]
        )
        scoped = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, match), (tantivy.Occur.Must, self._filter_query(flt))]
        )
        searcher = self._searcher()
        hits = []
        for score, address in searcher.search(scoped, limit=k, count=False).hits:
            doc = searcher.doc(address)
            hits.append(ScoredChunk(str(doc.get_first("chunk_id")), str(doc.get_first("doc_id")), float(score)))
        return hits

    def _query_terms(self, query: str) -> list[str]:
        return list(dict.fromkeys(self._analyzer.analyze(pretokenize(query))))

    def count(self, flt: SearchFilter) -> int:
        if flt.allows_nothing():
            return 0
        # tantivy's top-docs collector refuses limit=0; the count does not depend on it
        result = self._searcher().search(self._filter_query(flt), limit=1, count=True)
        return int(result.count)  # type: ignore[attr-defined]  # tantivy's stub omits SearchResult.count

    def health(self) -> bool:
        if self._writer is None:
            return False
        try:
            self._index.searcher()
        except Exception:
            log.warning("text index health check failed", exc_info=True)
            return False
        return True

    def close(self) -> None:
        """Release the writer lock (waiting for background merges); safe to call twice."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None

    def _filter_query(self, flt: SearchFilter) -> tantivy.Query:
        """Tenant, kb and allow-list as MUST clauses with zero score, so they filter but never rank."""
        clauses = [
            tantivy.Query.term_query(self._schema, "tenant", flt.tenant, index_option="basic"),
            tantivy.Query.term_query(self._schema, "kb", flt.kb, index_option="basic"),
        ]
        if flt.doc_ids is not None:
            clauses.append(tantivy.Query.term_set_query(self._schema, "doc_id", sorted(flt.doc_ids)))
        if flt.readers is not None:
            clauses.append(tantivy.Query.term_set_query(self._schema, "acl", sorted(flt.readers)))
        return tantivy.Query.const_score_query(
            tantivy.Query.boolean_query([(tantivy.Occur.Must, c) for c in clauses]), 0.0
        )

    @contextmanager
    def _writing(self) -> Iterator[tantivy.IndexWriter]:
        """One serialised write: committed and visible on success, rolled back on any error."""
        with self._write_lock:
            writer = self._writer
            if writer is None:
                raise RuntimeError(f"text index {self.path} is closed")
            try:
                yield writer
            except BaseException:
                writer.rollback()
                raise
            writer.commit()
            self._index.reload()

    def _searcher(self) -> tantivy.Searcher:
        if self._writer is None:
            raise RuntimeError(f"text index {self.path} is closed")
        return self._index.searcher()
