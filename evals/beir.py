"""Reading BEIR-layout data sets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sieve.errors import InvalidInput, NotFound
from sieve.evals.jsonl import read_rows


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
    queries = {query_id: text for query_id, text in read_rows(
        data_dir / "queries.jsonl", lambda q: (str(q["_id"]), q["text"]), "a query with _id and text")
        if query_id in qrels}
    return BeirSplit(split, corpus, queries, {q: qrels[q] for q in queries})
