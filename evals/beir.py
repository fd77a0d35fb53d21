"""Reading BEIR-layout data sets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sieve.errors import InvalidInput, NotFound


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
        for number, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if len(row) < 3 or row[0] == "query-id":
                continue
            try:
                qrels[row[0]][row[1]] = int(row[2])
            except ValueError:
                raise InvalidInput(f"qrels/{split}.tsv line {number}: the score {row[2]!r} is not a whole number") from None
    queries: dict[str, str] = {}
    with (data_dir / "queries.jsonl").open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    item = json.loads(line)
                    query_id, text = str(item["_id"]), item["text"]
                except (ValueError, KeyError, TypeError):
                    raise InvalidInput(f"queries.jsonl line {number}: not a JSON object with _id and text") from None
                if query_id in qrels:
                    queries[query_id] = text
    return BeirSplit(split, corpus, queries, {q: qrels[q] for q in queries})
