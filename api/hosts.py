"""The Host names the server answers, so a page on another site cannot reach it by DNS rebinding.

A rebinding page (`attacker.example` resolved to 127.0.0.1) sends `Host: attacker.example:PORT`,
and its cross-site requests carry `Origin: http://attacker.example`: both get an error and no data.
`SIEVE_ALLOWED_HOSTS` names the hosts (any port). Unset, `--dev` answers its loopback names only,
since no key guards its data; a server with keys answers any host, since each request carries one.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from sieve.api.errors import error_response
from sieve.settings import Settings

ANY = "*"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# a Host header is a name or a bracketed IPv6 address, with an optional port
_HOST = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[^\s:/@\[\]]+))(?::\d{1,5})?", re.IGNORECASE)


def allowed_hosts(settings: Settings) -> list[str]:
    """The host names to answer, lower case without brackets; `["*"]` answers any."""
    if settings.allowed_hosts:
        return [h.strip().strip("[]").lower() for h in settings.allowed_hosts]
    return list(LOOPBACK_NAMES) if settings.auth_disabled else [ANY]


def host_name(header: str | None) -> str | None:
    """The host of a Host header without port or brackets, lower case; None when malformed."""
    match = _HOST.fullmatch(header or "")
    return None if match is None else (match["ip6"] or match["name"]).lower().rstrip(".")


def origin_host(origin: str) -> str | None:
    try:
        return urlsplit(origin).hostname  # lower case, brackets gone; "null" has none
    except ValueError:
        return None


class HostCheck:
    """ASGI middleware: 400 for a Host outside the allowed names, 403 for a cross-site Origin."""

    def __init__(self, app: ASGIApp, hosts: list[str]):
        self.app = app
        self.hosts = None if ANY in hosts else frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hosts is not None and scope["type"] == "http":
            headers = Headers(scope=scope)
            host = headers.get("host")
            if host_name(host) not in self.hosts:
                message = (f"this server does not answer for host {host!r}; "
                           "add it to SIEVE_ALLOWED_HOSTS if it is meant to")
                await error_response(400, message)(scope, receive, send)
                return
            origin = headers.get("origin")
            if origin is not None and origin_host(origin) not in self.hosts:
                await error_response(403, f"requests from origin {origin!r} are not allowed")(scope, receive, send)
                return
        await self.app(scope, receive, send)
