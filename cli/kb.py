"""`sieve kb`: list, delete and re-embed the knowledge bases of a tenant."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sieve.cli.common import JsonOpt, TenantOpt, friendly_errors, open_stack, out, print_json, tenant_or_default

kb_app = typer.Typer(help="Knowledge bases of a tenant: list, delete, re-embed (`sieve ingest` creates them).",
                     no_args_is_help=True)


@kb_app.command("list")
@friendly_errors
def kb_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List the tenant's knowledge bases with their searchable document counts."""
    from sieve.stores.catalog import kbs_with_counts

    with open_stack() as stack, stack.sessions() as session:
        kbs = [(kb.name, kb.description, documents)
               for kb, documents in kbs_with_counts(session, tenant_or_default(tenant))]
    if as_json:
        print_json([{"name": name, "description": description, "documents": documents}
                    for name, description, documents in kbs])
        return
    table = Table("name", "documents", "description")
    for name, description, documents in kbs:
        table.add_row(name, str(documents), description)
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
    with open_stack() as stack:
        deleted = Ingestor(stack).delete_knowledge_base(tenant_or_default(tenant), name)
    if as_json:
        print_json({"deleted": name, "documents": len(deleted)})
        return
    out.print(f"knowledge base {name!r} deleted with {len(deleted)} documents")


@kb_app.command("reembed")
@friendly_errors
def kb_reembed(
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base name.")],
    model: Annotated[str | None, typer.Option("--model", help="Folder from `sieve finetune embedder`, or `default` for "
                                              "the deployment's embedder (default: the KB's current model).")] = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed the KB's chunks with another embedder and switch the KB to it: queries keep the old vectors until the
    new ones are complete; the same command started again after an interruption embeds only what it had not reached."""
    import dataclasses
    import sys
    from pathlib import Path

    from sieve.ingest.reembed import reembed
    from sieve.stores.catalog import get_kb

    with open_stack() as stack:
        if model is None:
            with stack.sessions() as session:
                current = (get_kb(session, tenant_or_default(tenant), kb).profile or {}).get("embedding_model")
            folder = None if current is None else Path(current)
        else:
            folder = None if model == "default" else Path(model)
        report = reembed(stack, tenant_or_default(tenant), kb, folder, progress=not as_json and sys.stderr.isatty())
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    out.print(f"{report.kb}: {report.chunks} chunks of {report.documents} documents embedded with {report.model} "
              f"({report.embedded} new, the rest from the cache) in {report.seconds:.0f} s; the KB now uses it")
