"""`sieve search`, `ask`, `research` and `chat`: here, or through the server that owns the home."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from sieve.cli.common import (
    JsonOpt,
    KbOpt,
    TenantOpt,
    err,
    friendly_errors,
    graph_context,
    kb_filter,
    open_stack,
    out,
    print_json,
    served_home,
    tenant_or_default,
    through_server_only,
)
from sieve.degraded import Degraded


@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    paths: Annotated[
        str | None, typer.Option("--paths", help="Comma-separated recall paths (default: the KB profile's).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Number of hits.", min=1, max=200)] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search over a knowledge base; prints hits with per-path ranks (through the server on a served home)."""
    from sieve.api.schemas import HitPublic
    from sieve.retrievers.hybrid import HybridRetriever

    if (served := served_home()) is not None:
        through_server_only(tenant, **{"--paths": paths})
        with served:
            result = served.search(kb, query, k)
        hits, degraded = result["hits"], result["degraded"]
    else:
        with open_stack() as stack:
            flt = kb_filter(stack, tenant_or_default(tenant), kb)
            retriever = HybridRetriever(stack)
            chosen = [p.strip() for p in paths.split(",") if p.strip()] if paths else None
            profile = retriever.load_profile(flt.kb).merged(paths=chosen, top_k=k)
            found = asyncio.run(retriever.retrieve(query, flt, profile=profile))
            retriever.close()
        hits, degraded = [HitPublic.of(h).model_dump(mode="json") for h in found.hits], found.degraded
    if degraded:
        err.print(f"[yellow]degraded:[/yellow] {', '.join(degraded)}")
    if as_json:
        print_json(hits)
    else:
        table = Table("#", "score", "ranks", "document", "text")
        for i, h in enumerate(hits, start=1):
            ranks = " ".join(f"{p}:{r}" for p, r in h["ranks"].items())
            snippet = h["text"].replace("\n", " ")[:120]
            table.add_row(str(i), f"{h['score']:.4f}", ranks, h["title"] or h["filename"], snippet)
        out.print(table)
    if degraded and not hits:  # nothing found because part of the search did not run: not an answer
        err.print(f"[red]search failed:[/red] no hits, and {', '.join(degraded)}")
        raise typer.Exit(1)


@friendly_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Continue this conversation thread.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the agentic graph: routed, rewritten, narrowed, retrieved, graded; cited answer or refusal
    (through the server on a served home)."""
    from sieve.graphs.agentic_rag.runner import ask as run_ask

    if (served := served_home()) is not None:
        through_server_only(tenant)
        with served:
            result = served.ask(kb, question, thread)
    else:
        with open_stack() as stack:
            context = graph_context(stack, tenant_or_default(tenant), kb)
            result = asyncio.run(run_ask(question, kb=kb, thread_id=thread, tenant=tenant_or_default(tenant), context=context,
                                         settings=stack.settings)).to_json()
    if as_json:
        print_json(result)
    else:
        out.print(f"[dim]route: {result['route']}  query: {result['rewritten_query']}[/dim]")
        # the refusal's answer is the reason, said to the user: once
        out.print(f"[yellow]refused:[/yellow] {result['answer']}" if result["refused"] else result["answer"])
        _print_citations(result["citations"], result["answer"])
    _report_degraded(result, as_json, "question")


@friendly_errors
def research(
    question: Annotated[str, typer.Argument(help="The question (a comparison, an enumeration, a chain of entities).")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deep research: sub-questions retrieved step by step within the profile's research_budget_ms and
    max_steps; a report with one cited section per sub-question (through the server on a served home)."""
    from sieve.graphs.deep_research.runner import research as run_research

    if (served := served_home()) is not None:
        through_server_only(tenant)
        with served:
            result = served.research(kb, question)
    else:
        with open_stack() as stack:
            context = graph_context(stack, tenant_or_default(tenant), kb)
            result = asyncio.run(run_research(question, kb=kb, tenant=tenant_or_default(tenant), context=context))
    if as_json:
        print_json(result)
    else:
        done = result["research"]
        for step in done["steps"]:
            kept = ", ".join(dict.fromkeys(p["filename"] for p in step["kept"])) or "nothing kept"
            out.print(f"[dim]step {step['step']}: {step['query']} -> {kept}[/dim]")
        out.print(f"[dim]stopped: {done['stop_reason']} after {done['steps_used']} step(s)[/dim]")
        out.print(result["answer"])
        _print_citations(result["citations"])
    _report_degraded(result, as_json, "research")


@friendly_errors
def chat(
    kb: KbOpt,
    tenant: TenantOpt = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Continue this thread (default: a new one).")] = None,
) -> None:
    """Interactive chat with streamed answers; follow-up questions use the conversation so far
    (through the server on a served home, which then keeps the thread)."""
    from sieve.graphs.agentic_rag.runner import stream_answer

    thread = thread or uuid.uuid4().hex
    if (served := served_home()) is not None:
        through_server_only(tenant)
        with served:
            served.get_kb(kb)  # an unknown knowledge base fails before the first prompt

            def remote_turn(question: str) -> None:
                for kind, data in served.stream_turn(kb, question, thread):
                    _show_event(kind, data)

            _chat_loop(kb, thread, remote_turn)
        return
    with open_stack() as stack:
        context = graph_context(stack, tenant_or_default(tenant), kb)

        async def turn(question: str) -> None:
            async for event in stream_answer(question, kb=kb, thread_id=thread, tenant=tenant_or_default(tenant),
                                             context=context, settings=stack.settings):
                _show_event(event.type, event.data)

        _chat_loop(kb, thread, lambda question: asyncio.run(turn(question)))


def _chat_loop(kb: str, thread: str, turn: Callable[[str], None]) -> None:
    out.print(f"[dim]knowledge base {kb!r}, thread {thread}; empty line or Ctrl-D to quit[/dim]")
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            break
        if not question:
            break
        turn(question)


def _show_event(kind: str, data: dict) -> None:
    """One stream event of a turn, run here or on the server alike."""
    if kind == "route":
        out.print(f"[dim]route: {data['route']}[/dim]")
    elif kind == "rewrite":
        out.print(f"[dim]query: {data['rewritten_query']}[/dim]")
    elif kind == "token":
        out.print(data["text"], end="", highlight=False, soft_wrap=True)
    elif kind == "degraded":
        err.print(f"\n[yellow]degraded:[/yellow] {', '.join(data['degraded'])}")
    elif kind == "done":
        out.print()
        _print_citations(data["citations"])


def _print_citations(citations: list, answer: str = "") -> None:
    """The numbered sources; a quote the answer already reads out verbatim is not printed again."""
    for i, c in enumerate(citations, start=1):
        quote = c["quote"].replace("\n", " ")
        page = f" (page {c['page']})" if c.get("page") else ""
        shown = "" if quote and quote in answer.replace("\n", " ") else f": {quote[:160]}"
        out.print(f"[cyan][{i}][/cyan] {c['filename']}{page}{shown}", highlight=False)


def _report_degraded(result: dict, as_json: bool, what: str) -> None:
    """The turn's degraded flags on stderr; exit 1 when the knowledge base could not be searched at all."""
    if result["degraded"] and not as_json:
        err.print(f"[yellow]degraded:[/yellow] {', '.join(result['degraded'])}")
    if Degraded.RETRIEVAL_ERROR in result["degraded"]:
        err.print(f"[red]the {what} failed:[/red] retrieval is unavailable (the server's or this process's log says why)")
        raise typer.Exit(1)
