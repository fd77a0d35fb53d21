"""`sieve db` (the metadata DB's schema) and `sieve migrate` (a knowledge base into other engines)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sieve.cli.common import (
    JsonOpt,
    KbOpt,
    TenantOpt,
    current_settings,
    friendly_errors,
    open_stack,
    out,
    print_json,
    tenant_or_default,
)

db_app = typer.Typer(help="The metadata DB's schema (Alembic migrations, SQLite and PostgreSQL).", no_args_is_help=True)


@db_app.command("upgrade")
@friendly_errors
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Bring the metadata DB's schema to this version's newest migration.

    Every process does this on start (PostgreSQL serialises them with a lock); run it once in a
    deployment step so that workers never start on a half-migrated database.
    """
    from sieve.stores.database import upgrade_db

    before, after = upgrade_db(current_settings().resolved_database_url)
    if as_json:
        print_json({"from": before, "to": after})
        return
    out.print(f"schema {before or '(new)'} -> {after}" if before != after else f"schema already at {after}")


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
    with open_stack() as source, open_target(source, profile) as target:
        report = migrate_kb(source, target, tenant_or_default(tenant), kb, progress=not as_json and sys.stderr.isatty())
    if as_json:
        print_json(report.as_dict())
        return
    out.print(
        f"{report.documents} documents migrated ({report.skipped} already there), {report.chunks} chunks, "
        f"{report.embedded} embedded; target holds {report.target_chunks} chunks, "
        f"{report.target_text} in the text index, {report.target_vectors} vectors"
    )
