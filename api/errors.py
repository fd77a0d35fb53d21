"""Every error as `{"error": {"message", "type", "code"}}`: OpenAI's shape, so one client reads them all.

The message always says what was wrong and, where it helps, what is accepted instead. The domain's
failures (`sieve.errors`) become statuses here, in one table; anything else is a bug, answered 500
without its text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sieve.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SieveError,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedType,
)

log = logging.getLogger(__name__)

# The one mapping from failures to statuses; the most specific class wins.
STATUSES: dict[type[SieveError], int] = {
    SieveError: 500,
    InvalidInput: 400,
    TooLarge: 413,
    UnsupportedType: 415,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
    ConfigurationError: 500,
}
CHALLENGE = {"WWW-Authenticate": "Bearer"}

_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 409: "conflict_error"}


def error_body(status: int, message: str) -> dict[str, dict[str, object]]:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": status}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def status_of(exc: SieveError) -> int:
    return next(STATUSES[cls] for cls in type(exc).__mro__ if cls in STATUSES)


def sieve_error_response(exc: SieveError) -> JSONResponse:
    """The response for a domain failure, wherever it is caught (the app's handler, the MCP wrapper)."""
    if isinstance(exc, ConfigurationError):  # its message can name a server path: the log has it
        log.error("the server is misconfigured: %s", exc.message)
        return error_response(500, "the server is misconfigured; its log names the setting")
    return error_response(status_of(exc), exc.message, CHALLENGE if isinstance(exc, Unauthenticated) else None)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = e.get("ctx", {}).get("error", "")
            return 400, f"malformed JSON body{': ' + str(detail) if detail else ''}"
        if tuple(e.get("loc", ())) == ("body",) and e.get("type") in ("model_attributes_type", "dict_type"):
            return 400, "the request body must be a JSON object (Content-Type: application/json)"
    return 422, describe_errors(errors)


def describe_errors(errors: Sequence[Any]) -> str:
    """Pydantic's errors on one line, each as `field.path: message` (the CLI prints them the same way)."""
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(SieveError)
    async def domain_error(_: Request, exc: SieveError) -> JSONResponse:
        return sieve_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(*_validation_message(exc))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # the exception's text can name server paths: it goes to the log (Starlette re-raises it), not the client
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")
