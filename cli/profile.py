"""`sieve profile`: show and change a knowledge base's retrieval profile."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from sieve.cli.common import JsonOpt, KbOpt, TenantOpt, friendly_errors, open_stack, out, print_json, tenant_or_default

profile_app = typer.Typer(help="Show and change a knowledge base's retrieval profile.", no_args_is_help=True)


def _print_profile(profile, as_json: bool) -> None:
    data = profile.model_dump(mode="json")
    if as_json:
        print_json(data)
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

    with open_stack() as stack, stack.sessions() as session:
        profile = RetrievalProfile.from_stored(get_kb(session, tenant_or_default(tenant), kb).profile)
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
    with open_stack() as stack, stack.sessions.begin() as session:
        record = get_kb(session, tenant_or_default(tenant), kb)
        profile = RetrievalProfile.from_stored(record.profile).assigned(assignments)
        profile.require_deployable(stack.settings)
        record.profile = profile.model_dump(mode="json")
    _print_profile(profile, as_json)
