"""The article's example through the real `sieve` command: hybrid search bridges 苹果公司 and Apple Inc."""

from __future__ import annotations

import json


def top_files(sieve, home, *args: str) -> list[str]:
    hits = json.loads(sieve(home, "search", *args, "--json").stdout)
    return [h["filename"] for h in hits]


def test_hybrid_search_finds_the_english_apple_document_for_a_chinese_query(sieve, demo_home):
    assert "apple-inc.md" in top_files(sieve, demo_home, "苹果公司", "--kb", "demo", "-k", "5")


def test_bm25_alone_misses_it(sieve, demo_home):
    assert "apple-inc.md" not in top_files(sieve, demo_home, "苹果公司", "--kb", "demo", "-k", "5", "--paths", "bm25")


def test_search_json_carries_what_a_client_needs(sieve, demo_home):
    hits = json.loads(sieve(demo_home, "search", "华为 总部", "--kb", "demo", "-k", "3", "--json").stdout)
    assert hits[0]["filename"] == "huawei.md"
    assert set(hits[0]) >= {"doc_id", "chunk_id", "filename", "title", "text", "score", "ranks"}
    assert "深圳" in hits[0]["text"] and hits[0]["title"] == "华为公司"
    assert set(hits[0]["ranks"]) == {"bm25", "dense"}


def test_docs_list_shows_the_ingested_files(sieve, demo_home):
    docs = json.loads(sieve(demo_home, "docs", "list", "--kb", "demo", "--json").stdout)
    assert {d["filename"] for d in docs} >= {"apple-inc.md", "huawei.md"}


def test_unknown_kb_is_a_readable_error(sieve, demo_home):
    result = sieve(demo_home, "search", "anything", "--kb", "nope", check=False)
    assert result.returncode == 1
    assert "knowledge base 'nope' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_knowledge_base_is_deleted_with_its_documents_and_the_other_kb_stays(sieve, tmp_path, sample_kb):
    home = tmp_path / "home"
    for kb in ("keep", "drop"):
        sieve(home, "ingest", str(sample_kb), "--kb", kb, "--json")
    refused = sieve(home, "kb", "delete", "drop", check=False)  # no --yes and no terminal: nothing happens
    assert refused.returncode == 1 and {k["name"] for k in json.loads(sieve(home, "kb", "list", "--json").stdout)} == {
        "keep", "drop"}

    deleted = json.loads(sieve(home, "kb", "delete", "drop", "--yes", "--json").stdout)
    assert deleted == {"deleted": "drop", "documents": len(list(sample_kb.iterdir()))}
    assert [k["name"] for k in json.loads(sieve(home, "kb", "list", "--json").stdout)] == ["keep"]
    assert "does not exist" in sieve(home, "search", "华为 总部", "--kb", "drop", check=False).stderr
    assert top_files(sieve, home, "华为 总部", "--kb", "keep")[0] == "huawei.md"

    # the name is free again, and the new knowledge base starts empty (nothing left in BM25 or vectors)
    sieve(home, "ingest", str(sample_kb / "tea-culture.md"), "--kb", "drop", "--json")
    assert set(top_files(sieve, home, "华为 总部", "--kb", "drop")) == {"tea-culture.md"}
    assert "does not exist" in sieve(home, "kb", "delete", "nope", "--yes", check=False).stderr
