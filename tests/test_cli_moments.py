"""The CLI writes moments as the API does: in UTC with the offset (SQLite hands them back without one)."""

from __future__ import annotations

import json


def test_docs_and_keys_lists_give_their_moments_in_utc(demo_home, sieve, tmp_path):
    docs = json.loads(sieve(demo_home, "docs", "list", "--kb", "demo", "--json").stdout)
    assert len(docs) == 8 and all(doc["created_at"].endswith("+00:00") for doc in docs)

    home = tmp_path / "home"
    sieve(home, "keys", "create", "--tenant", "acme")
    keys = json.loads(sieve(home, "keys", "list", "--json").stdout)
    assert [key["tenant"] for key in keys] == ["acme"] and keys[0]["created_at"].endswith("+00:00")
