"""`sieve finetune`: fine-tune a reranker on a BEIR folder."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sieve.cli.common import (
    JsonOpt, TenantOpt, friendly_errors, kb_filter, open_stack, out, print_json, tenant_or_default,
)

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
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", min=0.0, help="AdamW learning rate (default 5e-5).")] = None,
    negatives: Annotated[int | None, typer.Option("--negatives", min=1, help="Hard negatives per positive (default 7).")] = None,
    candidates: Annotated[int | None, typer.Option("--candidates", min=2, help="Fused candidates mined and reranked (default 20).")] = None,
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
    given = {"candidates": candidates, "negatives": negatives, "epochs": epochs, "learning_rate": learning_rate}
    config = FinetuneConfig(holdout=holdout, device=device, **{k: v for k, v in given.items() if v is not None})
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
