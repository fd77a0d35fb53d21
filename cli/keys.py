"""`sieve keys`: create, list and revoke API keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from sieve.cli.common import JsonOpt, TenantOpt, err, friendly_errors, open_stack, out, print_json
from sieve.errors import NotFound

keys_app = typer.Typer(help="API keys: each maps to one tenant (and a user with groups); stored hashed.",
                       no_args_is_help=True)


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
    with open_stack() as stack, stack.sessions.begin() as session:
        key = create_api_key(session, tenant, name, user, group_names)
    sys.stdout.write(key + "\n")
    err.print("store it now: it cannot be shown again")


@keys_app.command("list")
@friendly_errors
def keys_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys by prefix (never the keys themselves)."""
    from sieve.stores.api_keys import list_api_keys
    from sieve.stores.metadata import as_utc

    with open_stack() as stack, stack.sessions() as session:
        keys = list_api_keys(session, tenant)
    if as_json:
        print_json([{"prefix": k.prefix, "tenant": k.tenant, "name": k.name,
                     "created_at": as_utc(k.created_at).isoformat(), "revoked": k.revoked, "user": k.user,
                     "groups": list(k.groups)} for k in keys])
        return
    table = Table("prefix", "tenant", "user", "groups", "name", "created", "revoked")
    for k in keys:
        table.add_row(k.prefix, k.tenant, k.user or "", ",".join(k.groups), k.name,
                      as_utc(k.created_at).isoformat()[:19], "yes" if k.revoked else "")
    out.print(table)


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(key: Annotated[str, typer.Argument(help="The key, or the prefix `sieve keys list` shows.")]) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    from sieve.stores.api_keys import revoke_api_key

    with open_stack() as stack, stack.sessions.begin() as session:
        revoked = revoke_api_key(session, key)
    if not revoked:
        raise NotFound(f"no active key matches {key}")
    out.print("revoked")
