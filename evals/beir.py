"""Reading BEIR-layout data sets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sieve.errors import NotFound


@dataclass
class BeirSplit:
    name: str
    corpus: Path
    queries: dict[str, str]  # query id -> text, only queries that have qrels in the split
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: grade}


def load_split(data_dir: Path, split: str) -> BeirSplit:
    corpus = data_dir / "corpus.jsonl"
    qrels_path = data_dir / "qrels" / f"{split}.tsv"
    for needed in (corpus, data_dir / "queries.jsonl", qrels_path):
        if not needed.exists():
            available = sorted(p.stem for p in (data_dir / "qrels").glob("*.tsv")) if (data_dir / "qrels").is_dir() else []
            raise NotFound(f"{needed} not found (BEIR layout expected; splits here: {available or 'none'})")
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with qrels_path.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels[row[0]][row[1]] = int(row[2])
    queries: dict[str, str] = {}
    with (data_dir / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                item = json.loads(line)
                if str(item["_id"]) in qrels:
                    queries[str(item["_id"])] = item["text"]
    return BeirSplit(split, corpus, queries, {q: qrels[q] for q in queries})
