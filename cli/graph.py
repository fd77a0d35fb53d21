"""`sieve graph`: show and build the knowledge graph of a knowledge base."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sieve.cli.common import (
    JsonOpt,
    KbOpt,
    TenantOpt,
    err,
    friendly_errors,
    kb_filter,
    open_stack,
    out,
    print_json,
    served_home,
    tenant_or_default,
    through_server_only,
)
from sieve.errors import NotFound

graph_app = typer.Typer(help="The knowledge graph of a KB (extracted when its profile has graph_extraction=true).",
                        no_args_is_help=True)


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
    from sieve.stores import crud

    with open_stack() as stack:
        flt = kb_filter(stack, tenant_or_default(tenant), kb)
        shown = stack.graph.neighbourhood(entity, flt, hops, stack.settings.graph_fanout)
        if shown is None:
            raise NotFound(f"no entity {entity!r} in knowledge base {kb!r}")
        with stack.sessions() as session:
            files = crud.filenames(session, flt.tenant, {e.doc_id for e in shown.edges})
    edges = [{**e.__dict__, "filename": files.get(e.doc_id, "")} for e in shown.edges]
    if as_json:
        print_json({"entity": shown.entity.__dict__, "edges": edges, "chunk_ids": shown.chunk_ids})
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

        if (served := served_home()) is not None:
            through_server_only(tenant)
            with served:
                report = served.build_graph(kb, rebuild, progress)
        else:
            with open_stack() as stack:
                flt = kb_filter(stack, tenant_or_default(tenant), kb)
                report = build_graph(stack, flt.tenant, flt.kb, rebuild=rebuild, on_progress=progress).as_dict()
    if as_json:
        print_json(report)
    else:
        out.print(f"{report['extracted']} documents extracted ({report['relations']} relations), "
                  f"{report['skipped']} already had a graph, {len(report['failed'])} failed; the graph of {kb!r} "
                  f"has {report['entities_total']} entities and {report['relations_total']} relations")
        for failure in report["failed"]:
            err.print(f"[red]failed[/red] {escape(failure['source'])}: {escape(failure['error'])}")
    if report["failed"]:
        raise typer.Exit(1)
