"""`sieve graph show` and `sieve search --paths ...,graph` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from sieve.settings import Settings
from sieve.stores.catalog import get_or_create_kb
from sieve.stores.stack import Stack

CORPUS = Path(__file__).with_name("kg_corpus")


def test_graph_show_and_graph_search_from_the_command_line(tmp_path, sieve):
    home = tmp_path / "home"
    with Stack(Settings(home=home)) as stack, stack.sessions.begin() as session:
        get_or_create_kb(session, "default", "wiki")
    sieve(home, "profile", "set", "--kb", "wiki", "graph_extraction=true")
    report = json.loads(sieve(home, "ingest", str(CORPUS), "--kb", "wiki", "--json").stdout)
    assert report["added"] == 14

    shown = json.loads(sieve(home, "graph", "show", "星河科技有限公司", "--kb", "wiki", "--hops", "1", "--json").stdout)
    assert shown["entity"]["name"] == "星河科技" and shown["entity"]["type"] == "organization"
    stated = {(e["head"], e["relation"], e["tail"], e["filename"]) for e in shown["edges"]}
    assert {("张伟", "加入", "星河科技", "zhangwei-profile.md"), ("星河科技", "位于", "杭州", "xinghe-company.md")} <= stated
    assert {e["hop"] for e in shown["edges"]} == {1}

    two = json.loads(sieve(home, "graph", "show", "张伟", "--kb", "wiki", "--json").stdout)
    assert ("星河科技", "杭州", 2) in {(e["head"], e["tail"], e["hop"]) for e in two["edges"]}
    table = sieve(home, "graph", "show", "张伟", "--kb", "wiki").stdout
    assert "张伟 (person)" in table and "xinghe-company.md" in table

    hits = json.loads(sieve(home, "search", "张伟所在公司的总部位于哪个城市？", "--kb", "wiki",
                            "--paths", "bm25,dense,graph", "-k", "3", "--json").stdout)
    assert {"zhangwei-profile.md", "xinghe-company.md"} <= {h["filename"] for h in hits}

    missing = sieve(home, "graph", "show", "诸葛亮", "--kb", "wiki", check=False)
    assert missing.returncode == 1 and "no entity '诸葛亮'" in missing.stderr
