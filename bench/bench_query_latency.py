"""Query latency per path and fused on a 100k-chunk synthetic mixed zh/en corpus.

Engine + fusion + hydration are timed with a hash embedder (so model time is excluded), and the
real offline embedder's query-embedding time is measured separately on the same queries. Fused
retrieval is also timed including the query embedding, on a fresh retriever: each query's first
call embeds it (no query-vector cache), its second finds the vector in the guarded embedder's LRU
(cached); with the hash embedder that is the embedder's pool and the LRU, the model's own time is
the `embed` line. Prints the process's peak resident memory after indexing and the load average
(a shared machine inflates every figure); `--chunks 1000000` is the million-chunk point.

    .venv/bin/python bench/bench_query_latency.py [--chunks 100000] [--queries 200]
                                                  [--vectors hash|lowrank] [--home DIR]

`--home DIR` keeps the built corpus: a later run with the same DIR, --chunks and --vectors reuses
it, as does bench_acl.py's (its access lists do not matter here: every query is tenant-wide).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import HashEmbedder, LowRankHashEmbedder, iter_chunk_texts, queries

from sieve.evals.metrics import percentile
from sieve.retrievers.hybrid import HybridRetriever
from sieve.settings import Settings
from sieve.stores.acl import DEFAULT_ACL
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.embedding_cache import text_hash
from sieve.stores.metadata import Chunk, Document, DocumentAcl, DocumentStatus, new_id
from sieve.stores.stack import Stack
from sieve.stores.types import IndexedChunk, SearchFilter

EMBEDDERS = {"hash": HashEmbedder, "lowrank": LowRankHashEmbedder}


def build(
    stack: Stack, n_chunks: int, per_doc: int = 10, acl: Callable[[int], tuple[str, ...]] | None = None,
    vectors: np.ndarray | None = None,
) -> SearchFilter:
    """`n_chunks` synthetic chunks, `per_doc` to a document; `acl(i)` is the i-th document's access list.
    Row i of `vectors` is chunk i's vector (cached embeddings); without it the stack's embedder embeds."""
    with stack.sessions.begin() as session:
        kb_id = get_or_create_kb(session, "bench", "latency").id
    texts = iter_chunk_texts(n_chunks)
    stages = dict.fromkeys(("texts", "vectors", "metadata", "tantivy", "qdrant edge"), 0.0)
    t0 = time.perf_counter()
    batch = 5000
    for start in range(0, n_chunks, batch):
        clock = time.perf_counter()
        part = list(itertools.islice(texts, batch))
        stages["texts"] += time.perf_counter() - clock
        docs, chunks, acls = [], [], {}
        for i in range(0, len(part), per_doc):
            doc_id = new_id()
            docs.append(Document(id=doc_id, tenant_id="bench", kb_id=kb_id, filename=f"d{start + i}.txt",
                                 content_hash=doc_id, status=DocumentStatus.READY, chunk_count=per_doc))
            acls[doc_id] = acl((start + i) // per_doc) if acl else DEFAULT_ACL
            for j, text in enumerate(part[i : i + per_doc]):
                chunks.append(Chunk(id=new_id(), doc_id=doc_id, tenant_id="bench", kb_id=kb_id, ordinal=j,
                                    token_start=0, token_end=0, text=text, text_hash=text_hash(text)))
        clock = time.perf_counter()
        with stack.sessions.begin() as session:
            session.add_all(docs)
            session.add_all(chunks)
            session.add_all(DocumentAcl(doc_id=d, entry=e) for d, entries in acls.items() for e in entries)
        stages["metadata"] += time.perf_counter() - clock
        indexed = [IndexedChunk(c.id, c.doc_id, "bench", kb_id, c.text, acls[c.doc_id]) for c in chunks]
        clock = time.perf_counter()
        stack.text.add(indexed)
        stages["tantivy"] += time.perf_counter() - clock
        clock = time.perf_counter()
        rows = (np.asarray(vectors[start : start + len(chunks)]) if vectors is not None
                else stack.embedder.embed_passages([c.text for c in chunks]))
        stages["vectors"] += time.perf_counter() - clock
        clock = time.perf_counter()
        stack.vectors.add(indexed, rows)
        stages["qdrant edge"] += time.perf_counter() - clock
    print(f"indexed {n_chunks} chunks in {time.perf_counter() - t0:.1f} s (metadata + tantivy + qdrant edge; "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items()) + f"); {_load()}")
    t0 = time.perf_counter()
    stack.vectors.optimize()  # what `sieve ingest` does at the end: build the HNSW graph
    print(f"built the HNSW index in {time.perf_counter() - t0:.1f} s; peak resident memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GiB; {_load()}")
    return SearchFilter("bench", kb_id)


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def corpus(
    stack: Stack, chunks: int, acl: Callable[[int], tuple[str, ...]] | None = None, vectors: np.ndarray | None = None
) -> SearchFilter:
    """The bench's corpus in the stack's home: built (`acl` and `vectors` as in `build`), or found there
    from an earlier run of the same size and vectors."""
    home = stack.settings.home
    marker = home / "bench_acl.json"  # the name bench_acl.py gave it first: homes it built stay reusable
    wanted: dict[str, object] = {"chunks": chunks, "vectors": stack.embedder.name}
    if acl is None:
        wanted["acl"] = "none"  # bench_acl's corpus, with access lists, has no "acl" key
    if marker.exists():
        built = json.loads(marker.read_text())
        # tenant-wide queries never read access lists: without `acl`, a corpus with them serves as well
        if built != wanted and (acl is not None or {**built, "acl": "none"} != wanted):
            raise SystemExit(f"{home} holds another corpus ({built}): give its options or another --home")
        with stack.sessions() as session:
            flt = SearchFilter("bench", get_or_create_kb(session, "bench", "latency").id)
        print(f"reusing the {chunks}-chunk corpus in {home}")
        return flt
    with stack.sessions() as session:
        if session.scalar(select(func.count()).select_from(Document)):
            raise SystemExit(f"{home} holds documents of an unfinished build: remove it or give another --home")
    flt = build(stack, chunks, acl=acl, vectors=vectors)
    marker.write_text(json.dumps(wanted))
    return flt


async def measure(retriever: HybridRetriever, flt: SearchFilter, qs: list[str], paths: list[str]) -> list[float]:
    profile = retriever.load_profile(flt.kb).merged(paths=paths, top_k=10)
    for q in qs[:10]:  # warm-up
        await retriever.retrieve(q, flt, profile=profile)
    out = []
    for q in qs:
        result = await retriever.retrieve(q, flt, profile=profile)
        out.append(result.timings_ms["total"] - result.timings_ms.get("embed_query", 0.0))
    return out


async def with_embedding(retriever: HybridRetriever, flt: SearchFilter, qs: list[str]) -> tuple[list[float], list[float]]:
    """Fused latency including the query embedding, per query: its first call (embedded: `retriever` is
    fresh, and warmed up on other queries) and its second (the vector from the query LRU)."""
    profile = retriever.load_profile(flt.kb).merged(paths=["bm25", "dense"], top_k=10)
    for q in queries(10, seed=12):  # warm-up on queries outside the measured set
        await retriever.retrieve(q, flt, profile=profile)
    cold: list[float] = []
    cached: list[float] = []
    for q in qs:
        for out in (cold, cached):
            result = await retriever.retrieve(q, flt, profile=profile)
            out.append(result.timings_ms["total"])
    return cold, cached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--home", type=Path, help="keep the built corpus here and reuse it on later runs")
    ap.add_argument("--vectors", choices=("hash", "lowrank"), default="hash",
                    help="iid hash vectors (HNSW's worst case) or hash vectors in a 32-dimensional subspace")
    args = ap.parse_args()
    qs = queries(args.queries)
    with tempfile.TemporaryDirectory() as tmp, \
            Stack(Settings(home=args.home or Path(tmp)), embedder=EMBEDDERS[args.vectors]()) as stack:
        flt = corpus(stack, args.chunks)
        retriever = HybridRetriever(stack)
        print(f"\n{'run':<50} {'p50 ms':>8} {'p95 ms':>8}   ({len(qs)} queries, {args.chunks} chunks; "
              f"load average {os.getloadavg()[0]:.1f})")
        for name, paths in (("bm25", ["bm25"]), ("dense", ["dense"]), ("fused", ["bm25", "dense"])):
            lat = asyncio.run(measure(retriever, flt, qs, paths))
            print(f"{name + ' excluding embedding':<50} {percentile(lat, 50):>8.2f} {percentile(lat, 95):>8.2f}")
        retriever.close()
        retriever = HybridRetriever(stack)  # an empty query-vector cache
        distinct = list(dict.fromkeys(qs))  # a repeated query would find its vector cached on its first call
        cold, cached = asyncio.run(with_embedding(retriever, flt, distinct))
        retriever.close()
        for name, lat in (("no query-vector cache", cold), ("query vector cached", cached)):
            print(f"{'fused including embedding, ' + name:<50} {percentile(lat, 50):>8.2f} {percentile(lat, 95):>8.2f}"
                  f"   ({type(stack.embedder).__name__}, {len(distinct)} distinct queries)")
        print(f"(load average {os.getloadavg()[0]:.1f} at the end)")

    from sieve.models.factory import build_embedder

    with tempfile.TemporaryDirectory() as tmp:
        embedder = build_embedder(Settings(home=Path(tmp)))
        embedder.embed_queries(qs[:5])
        lat = []
        for q in qs:
            t0 = time.perf_counter()
            embedder.embed_queries([q])
            lat.append((time.perf_counter() - t0) * 1000)
        print(f"{'embed':<50} {percentile(lat, 50):>8.2f} {percentile(lat, 95):>8.2f}   "
              f"(query embedding alone, {type(embedder).__name__})")


if __name__ == "__main__":
    main()
