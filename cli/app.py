"""The root `sieve` command and its global options (--home, --verbose), and how it logs."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sieve.settings import get_settings

app = typer.Typer(help="Sieve: agentic RAG over your knowledge bases, offline by default.", no_args_is_help=True)


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

    @property
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
