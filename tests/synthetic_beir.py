"""A tiny synthetic BEIR set: one document per topic, two queries per topic (fast to ingest)."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = ["apple iphone", "green tea", "marathon runner", "solar panel", "river bridge", "piano concert",
          "coffee bean", "mountain glacier", "chess opening", "honey bee", "rice harvest", "wind turbine"]


def synthetic_beir(folder: Path) -> Path:
    """One document per topic, two queries per topic, each relevant to its topic's document."""
    folder.mkdir()
    (folder / "qrels").mkdir()
    corpus = [{"_id": f"d{i}", "title": topic, "text": f"a story about the {topic}. the {topic} is a {topic}."}
              for i, topic in enumerate(TOPICS)]
    queries = [{"_id": f"q{i}-{n}", "text": f"what is the {topic}" if n else f"{topic} story"}
               for i, topic in enumerate(TOPICS) for n in range(2)]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), encoding="utf-8")
    qrels = ["query-id\tcorpus-id\tscore"] + [f"{q['_id']}\td{q['_id'][1:].split('-')[0]}\t1" for q in queries]
    (folder / "qrels" / "train.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return folder
