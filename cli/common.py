"""What every command module shares: the consoles, the common options, errors as one line and an exit
code, JSON output, the stores of this home, and the running server that owns it."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.exceptions import TyperException

from sieve.errors import ConfigurationError, InvalidInput, SieveError, Unavailable
from sieve.settings import Settings, get_settings

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

KbOpt = Annotated[str, typer.Option("--kb", help="Knowledge base name.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant (default: SIEVE_DEFAULT_TENANT).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


# The one mapping from failures to exit codes (2, a usage error, is click's). The most specific class wins.
EXIT_CODES: dict[type[SieveError], int] = {
    SieveError: 1,  # refused or failed for the reason printed: bad input, not found, a conflict
    Unavailable: 69,  # a service the command needs is down (EX_UNAVAILABLE)
    ConfigurationError: 78,  # a setting is missing or wrong; the message names it (EX_CONFIG)
}
INTERNAL_ERROR = 70  # a bug (EX_SOFTWARE): the traceback goes to the log, never to the user's screen
IO_ERROR = 74  # reading or writing a file failed (EX_IOERR)


def exit_code(exc: SieveError) -> int:
    return next(EXIT_CODES[cls] for cls in type(exc).__mro__ if cls in EXIT_CODES)


def friendly_errors(fn: F) -> F:
    """A `SieveError` prints its message on one line and exits with its code; anything else is a bug,
    reported as an internal error whose traceback `--verbose` shows."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # the framework's own endings (an exit, an unanswered prompt, a bad option): it reports them
        except ValidationError as exc:  # e.g. a profile: one line, worded as the API words it
            from sieve.api.errors import describe_errors

            err.print(f"[red]error:[/red] {escape(describe_errors(exc.errors()))}")
            raise typer.Exit(1) from None
        except SieveError as exc:
            # one line however narrow the terminal; `pip install 'x[extra]'` is not markup
            err.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(exit_code(exc)) from None
        except OSError as exc:  # the machine's fault, not the program's: a file named that is missing, a full disk
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(IO_ERROR) from None
        except Exception as exc:
            # the root command's log handler prints one line, or the traceback with --verbose
            logging.getLogger("sieve.cli").error("internal error in `%s`, a bug: please report it",
                                                 fn.__name__.replace("_", "-"), exc_info=exc)
            raise typer.Exit(INTERNAL_ERROR) from None

    return wrapper  # type: ignore[return-value]


def current_settings() -> Settings:
    return get_settings()


def tenant_or_default(tenant: str | None) -> str:
    return tenant or current_settings().default_tenant


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def exit_if_failed(failed: Sequence[tuple[str, str]], total: int, noun: str) -> None:
    """Exit 1 with one summary line when any item failed, so a script or CI run notices a partial success."""
    if not failed:
        return
    shown = "; ".join(f"{name}: {why}" for name, why in failed[:3])
    more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
    err.print(f"[red]{len(failed)} of {total} {noun} failed:[/red] {escape(shown + more)}")
    raise typer.Exit(1)


def open_stack():
    from sieve.stores.stack import Stack

    return Stack(current_settings())


def served_home():
    """The running server that owns this home (`sieve serve`), as a client; None when none does."""
    from sieve.api.client import ServedHome
    from sieve.api.server_record import read_server_record

    record = read_server_record(current_settings().home)
    return None if record is None else ServedHome(record, os.environ.get("SIEVE_API_KEY"))


def through_server_only(tenant: str | None, **unsupported: object) -> None:
    if tenant is not None:
        raise InvalidInput("this home is served: the tenant is the one of SIEVE_API_KEY, not --tenant")
    for option, value in unsupported.items():
        if value:
            raise InvalidInput(f"this home is served and its API has no {option}; stop the server to use it")


def kb_filter(stack, tenant: str, kb: str):
    from sieve.stores.crud import kb_id
    from sieve.stores.types import SearchFilter

    with stack.sessions() as session:
        return SearchFilter(tenant=tenant, kb=kb_id(session, tenant, kb))


def graph_context(stack, tenant: str, kb: str):
    """The real graph wiring over this stack, after checking the knowledge base exists."""
    from sieve.graphs.shared.wiring import build_context, resolve_kb_id

    resolve_kb_id(stack, tenant, kb)
    return build_context(stack)
