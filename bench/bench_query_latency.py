"""Query latency per path and fused on a 100k-chunk synthetic mixed zh/en corpus.

Engine + fusion + hydration are timed with a hash embedder (so model time is excluded), and the
real offline embedder's query-embedding time is measured separately on the same queries. Prints the
process's peak resident memory after indexing and the load average (a shared machine inflates every
figure); `--chunks 1000000` is the million-chunk point.

    .venv/bin/python bench/bench_query_latency.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import HashEmbedder, chunk_texts, queries

from sieve.evals.metrics import percentile
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.acl import DEFAULT_ACL
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.embedding_cache import text_hash
from sieve.stores.metadata import Chunk, Document, DocumentAcl, DocumentStatus, new_id
from sieve.stores.stack import Stack
from sieve.stores.types import IndexedChunk, SearchFilter


def build(
    stack: Stack, n_chunks: int, per_doc: int = 10, acl: Callable[[int], tuple[str, ...]] | None = None
) -> SearchFilter:
    """`n_chunks` synthetic chunks, `per_doc` to a document; `acl(i)` is the i-th document's access list."""
    with stack.sessions.begin() as session:
        kb_id = get_or_create_kb(session, "bench", "latency").id
    texts = chunk_texts(n_chunks)
    t0 = time.perf_counter()
    batch = 5000
    for start in range(0, n_chunks, batch):
        part = texts[start : start + batch]
        docs, chunks, acls = [], [], {}
        for i in range(0, len(part), per_doc):
            doc_id = new_id()
            docs.append(Document(id=doc_id, tenant_id="bench", kb_id=kb_id, filename=f"d{start + i}.txt",
                                 content_hash=doc_id, status=DocumentStatus.READY, chunk_count=per_doc))
            acls[doc_id] = acl((start + i) // per_doc) if acl else DEFAULT_ACL
            for j, text in enumerate(part[i : i + per_doc]):
                chunks.append(Chunk(id=new_id(), doc_id=doc_id, tenant_id="bench", kb_id=kb_id, ordinal=j,
                                    token_start=0, token_end=0, text=text, text_hash=text_hash(text)))
        with stack.sessions.begin() as session:
            session.add_all(docs)
            session.add_all(chunks)
            session.add_all(DocumentAcl(doc_id=d, entry=e) for d, entries in acls.items() for e in entries)
        indexed = [IndexedChunk(c.id, c.doc_id, "bench", kb_id, c.text, acls[c.doc_id]) for c in chunks]
        stack.text.add(indexed)
        stack.vectors.add(indexed, stack.embedder.embed_passages([c.text for c in chunks]))
    print(f"indexed {n_chunks} chunks in {time.perf_counter() - t0:.1f} s (metadata + tantivy + qdrant edge)")
    t0 = time.perf_counter()
    stack.vectors.optimize()  # what `sieve ingest` does at the end: build the HNSW graph
    print(f"built the HNSW index in {time.perf_counter() - t0:.1f} s; peak resident memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GiB; load average {os.getloadavg()[0]:.1f}")
    return SearchFilter("bench", kb_id)


async def measure(retriever: HybridRetriever, flt: SearchFilter, qs: list[str], paths: list[str]) -> list[float]:
    profile = retriever.load_profile(flt.kb).merged(paths=paths, top_k=10)
    for q in qs[:10]:  # warm-up
        await retriever.retrieve(q, flt, profile=profile)
    out = []
    for q in qs:
        result = await retriever.retrieve(q, flt, profile=profile)
        out.append(result.timings_ms["total"] - result.timings_ms.get("embed_query", 0.0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    qs = queries(args.queries)
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings(home=Path(tmp)), embedder=HashEmbedder()) as stack:
        flt = build(stack, args.chunks)
        retriever = HybridRetriever(stack)
        print(f"\n{'run':<8} {'p50 ms':>8} {'p95 ms':>8}   (excluding query embedding; {len(qs)} queries)")
        for name, paths in (("bm25", ["bm25"]), ("dense", ["dense"]), ("fused", ["bm25", "dense"])):
            lat = asyncio.run(measure(retriever, flt, qs, paths))
            print(f"{name:<8} {percentile(lat, 50):>8.2f} {percentile(lat, 95):>8.2f}")
        retriever.close()

    from sieve.models.factory import build_embedder

    with tempfile.TemporaryDirectory() as tmp:
        embedder = build_embedder(Settings(home=Path(tmp)))
        embedder.embed_queries(qs[:5])
        lat = []
        for q in qs:
            t0 = time.perf_counter()
            embedder.embed_queries([q])
            lat.append((time.perf_counter() - t0) * 1000)
        print(f"{'embed':<8} {percentile(lat, 50):>8.2f} {percentile(lat, 95):>8.2f}   "
              f"(query embedding alone, {type(embedder).__name__})")


if __name__ == "__main__":
    main()
