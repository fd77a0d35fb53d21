"""`SIEVE_HOME/server.json`: which live server owns a home, so CLI commands on it use its API.

The embedded engines lock their folders, and a second process opening them can damage what the
owner is writing, so `Stack` refuses to open them on a served home (`EngineBusy`) and CLI commands
send their requests to the recorded URL instead. The server holds an exclusive lock on `server.lock`
for its lifetime: the kernel drops it when the process dies, however it dies, so a record left
behind never blocks the home, even when its pid has been reused by another process. Any other
process holds a shared lock on it while it has the engines open, so a server cannot start under it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sieve.errors import Conflict
from sieve.stores.types import EngineBusy

FILENAME = "server.json"
LOCKNAME = "server.lock"

# the lock file of each home this process serves, held open until the record is removed
_held: dict[Path, int] = {}


@dataclass(frozen=True)
class ServerRecord:
    url: str
    pid: int
    started_at: str
    auth: bool  # False in `--dev` mode: no API key needed

    def busy_hint(self, home: Path) -> str:
        """Why a command may not open this home's engines, and what to do instead."""
        return (f"`sieve serve` (pid {self.pid}, {self.url}) owns the engines of {home}: `sieve ingest`, `search`, "
                "`ask`, `chat` and `mcp` go through it; stop it for this command")


def _locked(home: Path) -> bool:
    """Whether some process (this one included) holds the home's server lock."""
    try:
        fd = os.open(home / LOCKNAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's own lock
    return False


def read_server_record(home: Path) -> ServerRecord | None:
    """The server serving `home`, or None when none is (a record left by a dead server is ignored)."""
    try:
        record = ServerRecord(**json.loads((home / FILENAME).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return record if _locked(home) else None


def write_server_record(home: Path, url: str, auth: bool) -> ServerRecord:
    """Records this process as the server of `home`; refuses when another live server holds it."""
    home = home.resolve()
    if home not in _held:
        fd = os.open(home / LOCKNAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if (current := read_server_record(home)) is not None:
                raise Conflict(f"{home} is already served by pid {current.pid} at {current.url}") from None
            raise Conflict(f"{home} is in use: another process has its engines open (a `sieve` command, "
                               "`sieve mcp`, `langgraph dev`); serve it when that has finished") from None
        _held[home] = fd
    record = ServerRecord(url, os.getpid(), datetime.now(UTC).isoformat(timespec="seconds"), auth)
    tmp = home / f".{FILENAME}.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
    tmp.replace(home / FILENAME)  # readers never see a half-written record
    return record


def remove_server_record(home: Path) -> None:
    fd = _held.pop(home.resolve(), None)
    if fd is not None:
        (home / FILENAME).unlink(missing_ok=True)
        os.close(fd)  # releases the lock after the record is gone


def hold_engines(home: Path) -> int | None:
    """Before a process opens `home`'s embedded engines: `EngineBusy` naming the server when another
    process serves the home; else a shared lock on `server.lock` that keeps a server from starting
    while they are open (a file descriptor: `os.close` it with the engines), or None in the server."""
    home = home.resolve()
    if home in _held:
        return None
    fd = os.open(home / LOCKNAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        record = read_server_record(home)
        raise EngineBusy(record.busy_hint(home) if record is not None else
                         f"`sieve serve` is starting on {home} and owns its engines; use it, or stop it") from None
    return fd
