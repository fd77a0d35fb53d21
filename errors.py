"""The failures a caller can act on, as one hierarchy.

Domain code (stores, ingest, nl2sql, graphs, models, the serving machinery) raises these; it never
speaks HTTP. The API maps them to statuses in one place (`api/errors.py`) and the CLI to exit codes in
one place (`cli/common.py`). A `SieveError`'s message is shown to the user as it is, so it says what was
wrong and what to do, and never holds a server path or a traceback. Anything that is not a `SieveError`
is a bug: users get "internal error" and the log gets the traceback.

Each class also derives from the built-in exception it refines (`NotFound` is a `LookupError`,
`InvalidInput` a `ValueError`…), so code that catches the built-in keeps working.
"""

from __future__ import annotations


class SieveError(Exception):
    """A failure whose message is safe and useful to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInput(SieveError, ValueError):
    """The request itself is wrong: a malformed value, an option that does not apply."""


class TooLarge(InvalidInput):
    """The input is over a size limit; the message names the limit."""


class UnsupportedType(InvalidInput):
    """The input is of a kind that is not handled (a file format); the message lists the accepted ones."""


class NotFound(SieveError, LookupError):
    """The named thing (knowledge base, document, key, entity…) does not exist for this caller."""


class Conflict(SieveError):
    """The request is valid but the current state refuses it (an engine owned by another process, a
    knowledge base that changed while being deleted, a feature switched off)."""


class Unauthenticated(SieveError):
    """No credentials, or credentials that are not accepted."""


class PermissionDenied(SieveError):
    """The caller is known but may not do this."""


class Unavailable(SieveError, RuntimeError):
    """A service the request needs (a model server, the job queue) is down, shutting down or overloaded."""


class ConfigurationError(SieveError, ValueError):
    """A setting is missing or wrong; the message names the setting (`SIEVE_…`) and what it needs."""
