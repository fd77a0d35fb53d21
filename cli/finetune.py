"""`sieve finetune`: fine-tune a reranker on a BEIR folder, or the embedder on a knowledge base."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from sieve.cli.common import (
    JsonOpt,
    TenantOpt,
    friendly_errors,
    kb_filter,
    open_stack,
    out,
    print_json,
    tenant_or_default,
)

T = TypeVar("T")


def _or_default(given: T | None, default: T) -> T:
    """An option left out (None) takes the config's default, which its help text names."""
    return default if given is None else given


finetune_app = typer.Typer(help="Fine-tune models on your data (CPU).", no_args_is_help=True)


@finetune_app.command("reranker")
@friendly_errors
def finetune_reranker(
    base: Annotated[Path, typer.Option("--base", help="Local base model folder (e.g. all-MiniLM-L6-v2).")],
    data: Annotated[Path, typer.Option("--data", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")],
    split: Annotated[str, typer.Option("--split", help="qrels split to train on, e.g. train.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the fine-tuned cross-encoder is saved.")],
    kb: Annotated[str | None, typer.Option("--kb", help="KB holding the corpus (default: eval-<folder>).")] = None,
    tenant: TenantOpt = None,
    holdout: Annotated[float, typer.Option("--holdout", min=0.05, max=0.9, help="Share of queries held back.")] = 0.2,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Training epochs (default 5).")] = None,
    learning_rate: Annotated[float | None, typer.Option(
        "--learning-rate", min=0.0, help="AdamW learning rate (default 5e-5).")] = None,
    negatives: Annotated[int | None, typer.Option("--negatives", min=1, help="Hard negatives per positive (default 7).")] = None,
    candidates: Annotated[int | None, typer.Option(
        "--candidates", min=2, help="Fused candidates mined and reranked (default 20).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Use only the first N queries.")] = None,
    device: Annotated[str, typer.Option("--device", help="Torch device to train on: cpu, cuda, cuda:1.")] = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Mine hard negatives with hybrid retrieval, train a cross-encoder on the CPU (or --device cuda), print Hit@1/3/5 and
    MRR@10 on the held-back queries: fused order, reranked, and reranked with rerank_mode=rrf."""
    from sieve.evals.beir import load_split
    from sieve.ingest.pipeline import Ingestor
    from sieve.models.finetune_reranker import FinetuneConfig
    from sieve.models.finetune_reranker import finetune_reranker as run_finetune
    from sieve.retrievers.hybrid import HybridRetriever

    beir = load_split(data, split)
    if limit:
        beir.queries = dict(list(beir.queries.items())[:limit])
    kb = kb or f"eval-{data.resolve().name}"
    defaults = FinetuneConfig()
    config = FinetuneConfig(
        holdout=holdout, device=device, candidates=_or_default(candidates, defaults.candidates),
        negatives=_or_default(negatives, defaults.negatives), epochs=_or_default(epochs, defaults.epochs),
        learning_rate=_or_default(learning_rate, defaults.learning_rate),
    )
    with open_stack() as stack:
        Ingestor(stack).ingest_beir(beir.corpus, kb, tenant_or_default(tenant), progress=not as_json and sys.stderr.isatty())
        flt = kb_filter(stack, tenant_or_default(tenant), kb)
        retriever = HybridRetriever(stack)
        try:
            report = run_finetune(retriever, flt, beir, base, out_dir, config)
        finally:
            retriever.close()
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    table = Table("held-back ranking", *report.before, title=f"{data.name}/{split}: {report.train_queries} training "
                  f"queries, {report.pairs} pairs, {report.train_seconds:.0f} s; {report.heldout_queries} held back")
    table.add_row("fused (before)", *(f"{v:.4f}" for v in report.before.values()))
    table.add_row("fine-tuned rerank (after)", *(f"{v:.4f}" for v in report.after.values()))
    table.add_row("fine-tuned rerank, rrf with fused", *(f"{v:.4f}" for v in report.after_rrf.values()))
    out.print(table)
    out.print(f"saved to {report.out} (use it with SIEVE_RERANKER_MODEL_PATH and "
              "`sieve profile set reranker=flag rerank_mode=rrf`)")


@finetune_app.command("embedder")
@friendly_errors
def finetune_embedder(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the fine-tuned embedder folder is written.")],
    kb: Annotated[str | None, typer.Option("--kb", help="KB to mine negatives from and search (default with a BEIR "
                                           "--train: eval-<folder>, ingested first).")] = None,
    train_data: Annotated[Path | None, typer.Option("--train", help="BEIR folder (with --split) or a .jsonl file of "
                                                    "{\"query\", \"positive\"} pairs; without it, title -> body pairs "
                                                    "from the KB's documents.")] = None,
    split: Annotated[str, typer.Option("--split", help="qrels split of a BEIR --train folder.")] = "train",
    base: Annotated[Path | None, typer.Option("--base", help="Local BERT-layout model folder to start from (default: "
                                              "the bundled multilingual-e5-small).")] = None,
    tenant: TenantOpt = None,
    holdout: Annotated[float, typer.Option("--holdout", min=0.05, max=0.9, help="Share of queries held back.")] = 0.2,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Training steps (default 60).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=2, help="Queries per step; the others' passages "
                                                   "are in-batch negatives (default 16).")] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", min=0.0,
                                                        help="AdamW learning rate (default 2e-5).")] = None,
    negatives: Annotated[int | None, typer.Option("--negatives", min=0,
                                                  help="Mined hard negatives per pair (default 1).")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", min=16, max=512,
                                                   help="Tokens per text in training (default 128).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=2, help="Use only the first N queries.")] = None,
    device: Annotated[str, typer.Option("--device", help="Torch device to train on: cpu, cuda, cuda:1.")] = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Mine hard negatives from the KB's index, train the embedder with MultipleNegativesRankingLoss, export it as the
    int8 ONNX graph serving runs, and print held-back nDCG@10 before and after: dense search, and the KB's fused
    retrieval with the fine-tuned model in its dense path, with the profile's fusion and with the fusion re-tuned
    for each model by 5-fold cross-validation over the held-back queries. Use the result with
    `sieve kb reembed --kb KB --model DIR`."""
    from sieve.errors import InvalidInput
    from sieve.models import finetune_embedder as ft

    progress = not as_json and sys.stderr.isatty()
    defaults = ft.EmbedderFinetuneConfig()
    config = ft.EmbedderFinetuneConfig(
        holdout=holdout, device=device, steps=_or_default(steps, defaults.steps),
        batch_size=_or_default(batch_size, defaults.batch_size),
        learning_rate=_or_default(learning_rate, defaults.learning_rate),
        negatives=_or_default(negatives, defaults.negatives), max_length=_or_default(max_length, defaults.max_length),
    )
    beir_dir = train_data if train_data is not None and train_data.is_dir() else None
    if kb is None:
        if beir_dir is None:
            raise InvalidInput("--kb is required unless --train is a BEIR folder")
        kb = f"eval-{beir_dir.resolve().name}"
    with open_stack() as stack:
        extra: dict[str, str] = {}
        if beir_dir is not None:
            from sieve.evals.beir import load_split
            from sieve.ingest.pipeline import Ingestor

            data = load_split(beir_dir, split)
            Ingestor(stack).ingest_beir(data.corpus, kb, tenant_or_default(tenant), progress=progress)
            flt = kb_filter(stack, tenant_or_default(tenant), kb)
            examples, source = ft.beir_examples(stack, flt, data), f"{beir_dir.name}/{split}"
        else:
            flt = kb_filter(stack, tenant_or_default(tenant), kb)
            if train_data is not None:
                if not train_data.is_file():
                    raise InvalidInput(f"--train {train_data}: no such BEIR folder or .jsonl file")
                examples, extra = ft.pair_examples(train_data)
                source = train_data.name
            else:
                examples, source = ft.kb_examples(stack, flt), f"{kb} (title -> body)"
        if limit:
            examples = dict(list(examples.items())[:limit])
        report = ft.finetune_embedder(stack, flt, examples, out_dir, base, config, extra, source, progress)
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    table = Table("held-back queries", *report.before, title=f"{report.source}: {report.train_queries} training "
                  f"queries, {report.pairs} pairs, {report.steps} steps, {report.train_seconds:.0f} s; "
                  f"{report.heldout_queries} held back")
    table.add_row("dense, base (before)", *(f"{v:.4f}" for v in report.before.values()))
    table.add_row("dense, fine-tuned (after)", *(f"{v:.4f}" for v in report.after.values()))
    for label, scores in (("fused, as the KB is (before)", report.fused_before),
                          ("fused, fine-tuned dense (after)", report.fused_after),
                          (f"fused, fusion tuned by {ft.TUNE_FOLDS}-fold CV (before)", report.fused_tuned_before),
                          (f"fused, fusion tuned by {ft.TUNE_FOLDS}-fold CV (after)", report.fused_tuned_after)):
        if scores:  # a pairs file's positives are not in the KB's indexes: no fused figures
            table.add_row(label, *(f"{scores[k]:.4f}" if k in scores else "" for k in report.before))
    out.print(table)
    out.print(f"saved {report.model} to {report.out} (switch a KB to it: `sieve kb reembed --kb {kb} --model {report.out}`)")
