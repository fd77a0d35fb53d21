"""Ingest throughput on SciFact abstracts, with a cold and with a warm embedding cache.

    .venv/bin/python bench/bench_ingest.py [--docs 500]

The warm run ingests the same texts into a second knowledge base of the same home: chunking and
indexing are repeated, embedding is served from the cache by chunk hash.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import islice
from pathlib import Path

from sieve.ingest.loaders import iter_beir_corpus
from sieve.ingest.pipeline import Ingestor, Source
from sieve.settings import Settings
from sieve.stores.stack import Stack

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"


def sources(n: int) -> list[Source]:
    return [
        Source(source_uri=f"beir:{bid}", filename=bid, content_hash=bid, loaded=doc)
        for bid, doc in islice(iter_beir_corpus(CORPUS), n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=500)
    args = ap.parse_args()
    docs = sources(args.docs)
    with tempfile.TemporaryDirectory() as tmp, Stack(Settings(home=Path(tmp))) as stack:
        ingestor = Ingestor(stack)
        stack.embedder.embed_passages(["warm-up"])
        print(f"embedder: {type(stack.embedder).__name__}; {len(docs)} SciFact abstracts")
        for label, kb in (("cold cache", "cold"), ("warm cache", "warm")):
            t0 = time.perf_counter()
            report = ingestor.ingest_sources(docs, kb, "bench")
            dt = time.perf_counter() - t0
            print(f"{label}: {dt:7.1f} s  {len(docs) / dt:7.1f} docs/s  {report.chunks / dt:7.1f} chunks/s  "
                  f"({report.embedded} chunks embedded of {report.chunks})")


if __name__ == "__main__":
    main()
