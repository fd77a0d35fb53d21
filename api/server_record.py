"""`SIEVE_HOME/server.json`: which live server owns a home, so CLI commands on it use its API.

The embedded engines lock their folders, so a second process on a served home would fail; the
record tells it where to send the request instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

FILENAME = "server.json"


@dataclass(frozen=True)
class ServerRecord:
    url: str
    pid: int
    started_at: str
    auth: bool  # False in `--dev` mode: no API key needed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but alive
        return True
    return True


def read_server_record(home: Path) -> ServerRecord | None:
    """The server serving `home`, or None when none is (a record left by a killed server is ignored)."""
    try:
        record = ServerRecord(**json.loads((home / FILENAME).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return record if _alive(record.pid) else None


def write_server_record(home: Path, url: str, auth: bool) -> ServerRecord:
    """Records this process as the server of `home`; refuses when another live server holds it."""
    current = read_server_record(home)
    if current is not None and current.pid != os.getpid():
        raise RuntimeError(f"{home} is already served by pid {current.pid} at {current.url}")
    record = ServerRecord(url, os.getpid(), datetime.now(timezone.utc).isoformat(timespec="seconds"), auth)
    tmp = home / f".{FILENAME}.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
    tmp.replace(home / FILENAME)  # readers never see a half-written record
    return record


def remove_server_record(home: Path) -> None:
    current = read_server_record(home)
    if current is not None and current.pid == os.getpid():
        (home / FILENAME).unlink(missing_ok=True)
