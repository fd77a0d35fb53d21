"""Cross-lingual recall: a Chinese query's English target, and an English query's Chinese one, in the top k.

Two knowledge bases with their queries (`data/crosslingual/queries.json`): `mixed`, written for this
project, where each target shares its words with a distractor in the query's own language (苹果公司 and
the Shandong apple orchards, 亚马逊公司 and the Amazon river); and `sample`, the repository's
samples/kb. Each query names one document (its filename) in the other language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.profile import RetrievalProfile
from sieve.stores.types import SearchFilter

DATA = Path(__file__).resolve().parent / "data" / "crosslingual"
FOLDERS = {"mixed": DATA / "mixed", "sample": Path(__file__).resolve().parents[1] / "samples" / "kb"}
DIRECTIONS = ("zh->en", "en->zh")


def queries() -> dict[str, dict[str, dict[str, str]]]:
    """Knowledge base -> direction -> {query: target filename}."""
    return json.loads((DATA / "queries.json").read_text(encoding="utf-8"))


@dataclass
class DirectionReport:
    queries: int
    hits: int  # targets in the top k
    first: int  # targets ranked first
    ranked: dict[str, list[str]] = field(default_factory=dict)  # query -> its top k filenames

    @property
    def hit_rate(self) -> float:
        return self.hits / max(1, self.queries)


async def hit_at(retriever: HybridRetriever, flt: SearchFilter, asked: dict[str, str], k: int = 3,
                 profile: RetrievalProfile | None = None) -> DirectionReport:
    """How many queries find their target in the top k (the KB's profile unless one is given)."""
    report = DirectionReport(len(asked), 0, 0)
    for query, target in asked.items():
        top = [h.filename for h in (await retriever.retrieve(query, flt, k=k, profile=profile)).hits]
        report.ranked[query] = top
        report.hits += target in top
        report.first += bool(top) and top[0] == target
    return report
