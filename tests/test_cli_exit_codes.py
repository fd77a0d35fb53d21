"""A partial failure is loud: the CLI exits non-zero with one summary line, and what did succeed is kept."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_server_cli import ENV, SIEVE, serving

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "kb"


def with_bad_files(folder: Path) -> Path:
    """Two good documents and two that cannot be read: an empty text and a PDF that is not one."""
    folder.mkdir(parents=True)
    for name in ("marathon.txt", "huawei.md"):
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "empty.txt").write_text("")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    return folder


def sieve(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SIEVE, "--home", str(home), *args], capture_output=True, text=True,
                          env={**ENV, **env}, timeout=300)


def assert_partial_ingest(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stderr
    assert "2 of 4 files failed:" in done.stderr and "empty.txt" in done.stderr and "broken.pdf" in done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)  # --json still prints the whole report
    assert report["added"] == 2 and len(report["failed"]) == 2


def test_ingest_with_unreadable_files_exits_1_naming_them_and_keeps_the_good_ones(tmp_path):
    home = tmp_path / "home"
    assert_partial_ingest(sieve(home, "ingest", str(with_bad_files(tmp_path / "kb")), "--kb", "kb", "--json"))
    found = sieve(home, "search", "marathon distance", "--kb", "kb", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)[0]["filename"] == "marathon.txt"
    # and the same files again: unchanged ones are no failure, the unreadable ones still are
    again = sieve(home, "ingest", str(tmp_path / "kb"), "--kb", "kb")
    assert again.returncode == 1 and "2 of 4 files failed:" in again.stderr


@pytest.mark.integration
def test_ingest_through_the_server_exits_1_when_upload_jobs_fail(tmp_path):
    home = tmp_path / "home"
    folder = with_bad_files(tmp_path / "kb")
    with serving(home, "--dev"):
        assert_partial_ingest(sieve(home, "ingest", str(folder), "--kb", "kb", "--json"))


def test_deleting_documents_that_are_not_there_exits_1_in_json_too(tmp_path):
    home = tmp_path / "home"
    sieve(home, "ingest", str(SAMPLES / "marathon.txt"), "--kb", "kb")
    doc_id = json.loads(sieve(home, "docs", "list", "--kb", "kb", "--json").stdout)[0]["doc_id"]
    done = sieve(home, "docs", "delete", doc_id, "no-such-doc", "--kb", "kb", "--json")
    assert done.returncode == 1 and json.loads(done.stdout) == {"deleted": 1, "requested": 2}
    assert "1 of 2 documents not deleted" in done.stderr


def test_a_search_that_could_not_run_any_path_exits_1_and_says_why(tmp_path):
    home = tmp_path / "home"
    sieve(home, "ingest", str(SAMPLES / "marathon.txt"), "--kb", "kb")
    failed = sieve(home, "search", "marathon", "--kb", "kb", "--json", SIEVE_FAULTS="bm25:error,dense:error")
    assert failed.returncode == 1 and json.loads(failed.stdout) == []
    assert "search failed" in failed.stderr and "retrieval_error" in failed.stderr
    asked = sieve(home, "ask", "How long is a marathon?", "--kb", "kb", SIEVE_FAULTS="bm25:error,dense:error")
    assert asked.returncode == 1 and "the question failed" in asked.stderr
    assert "Traceback" not in failed.stderr + asked.stderr
