"""`sieve docs`: list and delete documents, and set who may read them."""

from __future__ import annotations

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

docs_app = typer.Typer(help="List and delete documents of a knowledge base, and set who may read them.",
                       no_args_is_help=True)


@docs_app.command("list")
@friendly_errors
def docs_list(kb: KbOpt, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List the searchable documents of a knowledge base."""
    from sieve.api.schemas import DocumentPublic
    from sieve.stores.acl import acls_of
    from sieve.stores.crud import list_documents

    with open_stack() as stack:
        flt = kb_filter(stack, tenant_or_default(tenant), kb)
        with stack.sessions() as session:
            docs = list_documents(session, flt.tenant, flt.kb)
            acls = acls_of(session, [d.id for d in docs])
    fields = {"doc_id", "filename", "title", "owner", "tags", "chunks", "created_at", "source_uri", "acl"}
    rows = [DocumentPublic.of(d, acls[d.id]).model_dump(mode="json", include=fields) for d in docs]
    if as_json:
        print_json(rows)
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
    if (served := served_home()) is not None:
        through_server_only(tenant)
        with served:
            acl = served.document_acl(kb, doc_id, entries)
    else:
        from sieve.ingest.pipeline import Ingestor

        with open_stack() as stack:
            flt = kb_filter(stack, tenant_or_default(tenant), kb)
            if entries is None:
                with stack.sessions() as session:
                    found = _ready_document(session, flt, doc_id)
                    acl = list(acl_of(session, doc_id)) if found else None
            else:
                stored = Ingestor(stack).set_acl(flt.tenant, flt.kb, doc_id, entries)
                acl = None if stored is None else list(stored)
        if acl is None:
            raise NotFound(f"document {doc_id!r} does not exist in knowledge base {kb!r} (see `sieve docs list`)")
    if as_json:
        print_json({"doc_id": doc_id, "acl": acl})
    else:
        out.print(escape(",".join(acl)))


def _ready_document(session, flt, doc_id: str) -> bool:
    from sieve.stores.crud import get_document

    return get_document(session, flt.tenant, flt.kb, doc_id) is not None


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

    with open_stack() as stack:
        flt = kb_filter(stack, tenant_or_default(tenant), kb)
        deleted = Ingestor(stack).delete_documents(flt.tenant, flt.kb, doc_ids)
    if as_json:
        print_json({"deleted": deleted, "requested": len(doc_ids)})
    else:
        out.print(f"{deleted} of {len(doc_ids)} documents deleted")
    if deleted < len(doc_ids):
        err.print(f"[red]{len(doc_ids) - deleted} of {len(doc_ids)} documents not deleted:[/red] "
                  f"not in knowledge base {escape(kb)} (see `sieve docs list`)")
        raise typer.Exit(1)
