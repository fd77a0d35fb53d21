"""`sieve nl2sql`: guarded SQL over the document metadata."""

from __future__ import annotations

from typing import Annotated, Any

import typer
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
    tenant_or_default,
)

nl2sql_app = typer.Typer(help="Guarded SQL over the document metadata.", no_args_is_help=True)


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

    tenant = tenant_or_default(tenant)
    kb_id = None
    if kb is not None:
        with open_stack() as stack:
            kb_id = kb_filter(stack, tenant, kb).kb
    try:
        if db is None:
            guarded, result = check_sql(sql, tenant, kb_id), None
        else:
            guarded, result = run_sql(sql, tenant, make_engine(db), kb_id)
    except SQLRejected as exc:
        if as_json:
            print_json({"allowed": False, "reason": exc.reason})
        else:
            err.print(f"[red]refused:[/red] {exc.reason}")
        raise typer.Exit(1) from None
    if as_json:
        payload: dict[str, Any] = {"allowed": True, "sql": guarded}
        if result is not None:
            payload |= {"columns": result.columns, "rows": [list(map(_jsonable, r)) for r in result.rows]}
        print_json(payload)
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
    from sieve.nl2sql.service import select_documents

    with open_stack() as stack:
        flt = kb_filter(stack, tenant_or_default(tenant), kb)
        result = select_documents(question, flt.tenant, flt.kb, stack.engine)
    if as_json:
        print_json(result.to_dict())
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
