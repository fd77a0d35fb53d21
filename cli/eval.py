"""`sieve eval`: retrieval, answer-or-refuse, calibration, fusion tuning, rewrite, NL2SQL and LLM-judge runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sieve.cli.common import (
    JsonOpt,
    KbOpt,
    TenantOpt,
    current_settings,
    err,
    exit_if_failed,
    friendly_errors,
    graph_context,
    kb_filter,
    open_stack,
    out,
    print_json,
    tenant_or_default,
)
from sieve.errors import ConfigurationError, InvalidInput, Unavailable

eval_app = typer.Typer(help="Measure retrieval and answering quality.", no_args_is_help=True)


@eval_app.command("retrieval")
@friendly_errors
def eval_retrieval(
    data: Annotated[Path, typer.Option("--data", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")],
    split: Annotated[str, typer.Option("--split", help="qrels split name, e.g. train, dev, test.")],
    paths: Annotated[str, typer.Option("--paths", help="Comma-separated recall paths.")] = "bm25,dense",
    kb: Annotated[str | None, typer.Option("--kb", help="KB to hold the corpus (default: eval-<folder>).")] = None,
    tenant: TenantOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N queries.")] = None,
    reranker: Annotated[str, typer.Option("--reranker", help="Also run fused + this reranker (embedding, flag, "
                                          "rerank_api, score_api).")] = "none",
    no_budgets: Annotated[bool, typer.Option("--no-budgets", help="Quality apart from speed: no stage times out.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest the corpus (once) and print Hit@K, MRR@10, nDCG@10, Recall@100 per path, fused and reranked."""
    from sieve.evals.beir import load_split
    from sieve.evals.retrieval import configurations, evaluate_retrieval
    from sieve.ingest.pipeline import Ingestor
    from sieve.retrievers.hybrid import HybridRetriever
    from sieve.retrievers.rerank import RerankerKind

    beir = load_split(data, split)
    if limit:
        beir.queries = dict(list(beir.queries.items())[:limit])
    kb = kb or f"eval-{data.resolve().name}"
    progress = not as_json and sys.stderr.isatty()
    with open_stack() as stack:
        ingested = Ingestor(stack).ingest_beir(beir.corpus, kb, tenant_or_default(tenant), progress=progress)
        flt = kb_filter(stack, tenant_or_default(tenant), kb)
        retriever = HybridRetriever(stack)
        base = retriever.load_profile(flt.kb)
        runs = configurations([p.strip() for p in paths.split(",") if p.strip()],
                              base.unbounded() if no_budgets else base, RerankerKind(reranker))
        reports = asyncio.run(evaluate_retrieval(retriever, flt, beir, runs, progress=progress))
        retriever.close()
    if as_json:
        print_json([r.__dict__ for r in reports])
    else:
        keys = list(reports[0].metrics) if reports else []
        table = Table("run", *keys, "p50 ms", "p95 ms", title=f"{data.name} / {split} ({len(beir.queries)} queries)")
        for r in reports:
            table.add_row(r.name, *(f"{r.metrics[k]:.4f}" for k in keys), f"{r.latency_ms['p50']:.1f}",
                          f"{r.latency_ms['p95']:.1f}")
        out.print(table)
    # a corpus document that failed to ingest is missing from every run: the figures are not the benchmark's
    exit_if_failed(ingested.failed, ingested.added + ingested.replaced + ingested.unchanged + len(ingested.failed),
                    "corpus documents")


def _eval_llm():
    from sieve.models.chat import build_chat_model

    return build_chat_model(current_settings())


def _relevance(stack, kind: str):
    """A reranker provider's `score` as the relevance of refusal rows (cosine for `embedding`)."""
    from sieve.retrievers.rerank import RerankerKind, build_reranker

    reranker = build_reranker(RerankerKind(kind), stack.settings, stack.embedder, stack.embedding_cache)
    if reranker is None:
        raise InvalidInput("refusal needs a relevance: --reranker embedding, flag, rerank_api or score_api")
    return reranker


def _print_refusal(reports: list, title: str) -> None:
    table = Table("rule", "limits", "cal acc", "test acc", "test answerable: answered/refused",
                  "test unanswerable: answered/refused", title=title)
    for r in reports:
        c = r.test.confusion
        table.add_row(r.name, ", ".join(f"{k}={v:g}" for k, v in r.limits.items()), f"{r.calibration.accuracy:.3f}",
                      f"{r.test.accuracy:.3f}", f"{c['answerable/answered']}/{c['answerable/refused']}",
                      f"{c['unanswerable/answered']}/{c['unanswerable/refused']}")
    out.print(table)


@eval_app.command("refusal")
@friendly_errors
def eval_refusal(
    data: Annotated[Path, typer.Option("--data", help="Labelled rows: id, query, docs, answerable (JSON lines).")],
    reranker: Annotated[str, typer.Option(
        "--reranker", help="Relevance provider: embedding, flag, rerank_api, score_api.")] = "embedding",
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions (both variants).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer-or-refuse accuracy of the grade node's decision, fitted on one half, reported on the other."""
    from sieve.evals.refusal import evaluate_refusal, gather, load_rows
    from sieve.graphs.shared.context import Thresholds
    from sieve.prompts.language import detect

    rows = load_rows(data, limit)
    with open_stack() as stack:
        provider = _relevance(stack, reranker)
        evidence = gather(rows, provider.score, vectors=stack.embedder.embed_passages)
        provider.close()
    # the shipped relevance floor is calibrated for the embedding cosine only
    shipped = Thresholds().relevance(detect(rows[0].query)) if rows and reranker == "embedding" else None
    reports = evaluate_refusal(rows, evidence, fixed=shipped)
    if as_json:
        print_json([dataclasses.asdict(r) for r in reports])
        return
    _print_refusal(reports, f"{data.name}: {len(rows)} rows, relevance by {reranker}")


@eval_app.command("calibrate")
@friendly_errors
def eval_calibrate(
    kb: KbOpt,
    data: Annotated[Path, typer.Option("--data", help="Labelled rows: id, query, docs, answerable (JSON lines).")],
    tenant: TenantOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions (both variants).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the threshold without storing it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit the relevance threshold of the KB profile's reranker on the calibration half; store it in the profile.

    The evidence model reads relevance relative to this threshold, so it also carries the model onto the reranker's scale.
    """
    from sieve.evals.refusal import calibrate_threshold, gather, load_rows
    from sieve.retrievers.profile import RetrievalProfile
    from sieve.stores.catalog import get_kb

    rows = load_rows(data, limit)
    with open_stack() as stack:
        with stack.sessions() as session:
            profile = RetrievalProfile.from_stored(get_kb(session, tenant_or_default(tenant), kb).profile)
        kind = profile.reranker.value if profile.reranker.value != "none" else "embedding"  # none = cosine relevance
        provider = _relevance(stack, kind)
        evidence = gather(rows, provider.score, vectors=stack.embedder.embed_passages)
        provider.close()
        report = calibrate_threshold(rows, evidence)
        threshold = report.limits["min_relevance"]
        if not dry_run:
            with stack.sessions.begin() as session:
                record = get_kb(session, tenant_or_default(tenant), kb)
                record.profile = RetrievalProfile.from_stored(record.profile).merged(
                    relevance_threshold=threshold).model_dump(mode="json")
    if as_json:
        print_json({"reranker": kind, "stored": not dry_run, **dataclasses.asdict(report)})
        return
    _print_refusal([report], f"{kb}: relevance by {kind}")
    out.print(f"relevance_threshold {threshold:g} {'(dry run, not stored)' if dry_run else 'stored in the profile'}")


@eval_app.command("tune")
@friendly_errors
def eval_tune(
    kb: KbOpt,
    data: Annotated[Path, typer.Option("--data", help="BEIR folder whose corpus ids are the KB's document filenames.")],
    split: Annotated[str | None, typer.Option("--split", help="qrels split (default: the only one in qrels/).")] = None,
    tenant: TenantOpt = None,
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="Cross-validation folds.")] = 5,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N queries.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the winner without storing it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Search fusion mode, normalisation, path weights and rrf_k on the KB's labelled queries (nDCG@10,
    k-fold cross-validated); store the winner in the KB's profile."""
    from sieve.evals.beir import load_split
    from sieve.evals.tune import FusionSetting, collect_runs, tune
    from sieve.retrievers.hybrid import HybridRetriever
    from sieve.retrievers.profile import RetrievalProfile
    from sieve.stores.catalog import get_kb
    from sieve.stores.crud import count_named_documents

    if split is None:
        splits = sorted(p.stem for p in (data / "qrels").glob("*.tsv"))
        if len(splits) != 1:
            raise InvalidInput(f"{data / 'qrels'} holds {len(splits)} splits ({', '.join(splits) or 'none'}): "
                               "pick one with --split")
        split = splits[0]
    beir = load_split(data, split)
    if limit:
        beir.queries = dict(list(beir.queries.items())[:limit])
    progress = not as_json and sys.stderr.isatty()
    with open_stack() as stack:
        flt = kb_filter(stack, tenant_or_default(tenant), kb)
        labelled = {d for rel in beir.qrels.values() for d in rel}
        with stack.sessions() as session:
            known = count_named_documents(session, flt.kb, labelled)
        if not known:
            raise InvalidInput(f"no document of knowledge base {kb!r} is named by {data.name}'s labels (corpus ids are "
                             "matched to filenames): ingest that corpus into it first")
        retriever = HybridRetriever(stack)
        try:
            profile = retriever.load_profile(flt.kb)
            paths = [p for p in profile.paths if p != "image"]
            if len(paths) < 2:
                raise InvalidInput(f"the profile searches {', '.join(profile.paths)}: fusion needs two text paths "
                                 "(`sieve profile set paths=bm25,dense`)")
            runs = asyncio.run(collect_runs(retriever, flt, beir, paths, profile, progress=progress))
        finally:
            retriever.close()
        if runs.degraded:  # a path that failed or timed out would make the table meaningless
            raise Unavailable(f"{runs.degraded} retrievals degraded (a path failed; see the log): nothing tuned")
        report = tune(runs, beir, FusionSetting.of(profile, paths), folds)
        if not dry_run:
            with stack.sessions.begin() as session:
                record = get_kb(session, tenant_or_default(tenant), kb)
                record.profile = RetrievalProfile.from_stored(record.profile).merged(
                    **report.winner).model_dump(mode="json")
    if as_json:
        print_json({"stored": not dry_run, **dataclasses.asdict(report)})
        return
    table = Table("run", "setting", "nDCG@10", "held-out nDCG@10",
                  title=f"{kb}: {report.queries} labelled queries ({data.name}/{split}), {folds}-fold cross-validation")
    for row in report.rows:
        table.add_row(row.name, row.setting, f"{row.ndcg:.4f}", "" if row.heldout_ndcg is None else f"{row.heldout_ndcg:.4f}")
    out.print(table)
    out.print(f"{report.winner_label}: {'dry run, not stored' if dry_run else 'stored in the profile'}")


@eval_app.command("rewrite")
@friendly_errors
def eval_rewrite(
    data: Annotated[Path, typer.Option("--data", help="Dialogues: history, current, rewrite (JSON lines).")],
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N dialogues.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The rewrite node against human rewrites: exact match, char F1, ROUGE-L (LLM too when configured)."""
    from sieve.evals.rewrite import evaluate_rewrite, load_dialogs

    reports = asyncio.run(evaluate_rewrite(load_dialogs(data, limit), _eval_llm()))
    if as_json:
        print_json([dataclasses.asdict(r) for r in reports])
        return
    table = Table("rewriter", "dialogues", "exact", "char F1", "ROUGE-L", "LLM fallbacks", title=data.name)
    for r in reports:
        table.add_row(r.name, str(r.dialogs), *(f"{r.metrics[k]:.4f}" for k in ("exact", "char_f1", "rouge_l")),
                      str(r.degraded))
    out.print(table)


@eval_app.command("nl2sql")
@friendly_errors
def eval_nl2sql(
    data: Annotated[Path, typer.Option("--data", help="Folder with questions.jsonl and restaurants.sqlite.")],
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Execution accuracy with the configured LLM; without one, the guard's pass-rate on the gold SQL."""
    from sieve.evals.nl2sql import execution_accuracy, guard_pass_rate, load_questions

    questions = load_questions(data, limit)
    llm = _eval_llm()
    reports = [guard_pass_rate(data, questions)]
    if llm is not None:
        reports.append(asyncio.run(execution_accuracy(data, questions, llm, current_settings().llm_timeout_s)))
    if as_json:
        print_json([dataclasses.asdict(r) for r in reports])
        return
    table = Table("run", "questions", "passed", "accuracy", "failures", title=data.name)
    for r in reports:
        failures = ", ".join(f"{k}: {v}" for k, v in r.failures.items()) or "-"
        table.add_row(r.name, str(r.questions), str(r.passed), f"{r.accuracy:.4f}", failures)
    out.print(table)
    if llm is None:
        err.print("[dim]no LLM configured (SIEVE_LLM_BASE_URL): execution accuracy needs one[/dim]")


def _questions(path: Path, limit: int | None) -> list[str]:
    """Questions from JSON lines with a `question`, `query` or `text` field (BEIR queries.jsonl works)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            found.append(item.get("question") or item.get("query") or item["text"])
    return list(dict.fromkeys(found))[:limit] if limit else list(dict.fromkeys(found))


@eval_app.command("judge")
@friendly_errors
def eval_judge(
    kb: KbOpt,
    questions: Annotated[Path, typer.Option("--questions", help="JSON lines with question/query/text fields.")],
    tenant: TenantOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """End-to-end answers judged by the configured LLM: faithfulness, answer relevance, context precision."""
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver

    from sieve.evals.judge import Answered, evaluate_judge
    from sieve.graphs.agentic_rag.graph import build_graph

    llm = _eval_llm()
    if llm is None:
        raise ConfigurationError("the judge needs an LLM: set SIEVE_LLM_BASE_URL (and SIEVE_LLM_MODEL)")
    asked = _questions(questions, limit)
    with open_stack() as stack:
        context = graph_context(stack, tenant_or_default(tenant), kb)
        graph = build_graph(InMemorySaver())

        async def answer(question: str) -> Answered:
            state = await graph.ainvoke({"messages": [HumanMessage(question)], "tenant": tenant_or_default(tenant), "kb": kb},
                                        {"configurable": {"thread_id": uuid.uuid4().hex}}, context=context)
            return Answered(state.get("answer", ""), state.get("refused", False),
                            [p["text"] for p in state.get("passages", [])])

        report = asyncio.run(evaluate_judge(asked, answer, llm, current_settings().llm_timeout_s))
    if as_json:
        print_json(dataclasses.asdict(report))
    else:
        table = Table("questions", "judged", "refused", "judge failed", "faithfulness", "answer relevance",
                      "context precision", title=f"{kb}: LLM judge")
        table.add_row(str(report.questions), str(report.judged), str(report.refused), str(report.failed),
                      *(f"{report.metrics[k]:.3f}" if k in report.metrics else "-"
                        for k in ("faithfulness", "answer_relevance", "context_precision")))
        out.print(table)
    failed = [(q["question"], q["error"]) for q in report.per_question if q.get("error")]
    exit_if_failed(failed, report.questions, "judged questions")
