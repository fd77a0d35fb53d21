"""Which candidates a lexical path cannot see: chunks written in another script than the query.

BM25 matches tokens, so a Chinese query can never match an English passage (and the reverse), while
a multilingual embedder can. In fusion such a passage would lose every BM25 vote to same-script
passages that merely share a word (苹果 the fruit outranking Apple Inc. for 苹果公司), so fusion lets
the dense path stand in for BM25 on those passages (`fuse(..., unseen=...)`) -- only on the ones dense
finds as close to the query as what BM25 matched: BM25 would have given an off-topic passage nothing,
and a free share for every passage in the other script put marathon running above 苹果手机 for 苹果公司.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from sieve.retrievers.fusion import FusedChunk
from sieve.stores.metadata import Chunk
from sieve.stores.types import ScoredChunk

MIN_GROUP = 3  # candidates per script for a median worth aligning
CJK_SHARE = 0.2  # a passage this share of whose letters are CJK is Chinese/Japanese, whatever else it quotes
SCRIPT_SAMPLE = 200  # characters of a passage read to tell its script


# a passage's opening is enough to tell its script, and reading only it keeps this at a few ms; built once
# and run on the session's connection: building it per call and the ORM's execution took 0.35 of 1.2 ms
_OPENINGS = select(Chunk.id, func.substr(Chunk.text, 1, SCRIPT_SAMPLE)).where(Chunk.id.in_(bindparam("ids", expanding=True)))

# CJK ideographs, compatibility ideographs, kana, hangul (every one of them a letter)
_CJK_RANGES = ((0x3400, 0x9FFF), (0xF900, 0xFAFF), (0x3040, 0x30FF), (0xAC00, 0xD7AF))
_CJK = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES) + "]")


def script_of(text: str) -> str:
    """"cjk" or "latin" (every other alphabet: BM25 tokenises both the same way there)."""
    # counted in C (a regex, map over a builtin); `scripts_of` tells many texts' at once
    letters = sum(map(str.isalpha, text))
    if not letters:
        return "latin"
    return "cjk" if len(_CJK.findall(text)) >= CJK_SHARE * letters else "latin"


@cache
def _bmp_letters() -> np.ndarray:
    """`str.isalpha` of every code point of the Basic Multilingual Plane (64k calls, once)."""
    return np.array([chr(c).isalpha() for c in range(0x10000)], dtype=bool)


def scripts_of(texts: Sequence[str]) -> list[str]:
    """`script_of` of each of `texts`, counted for all at once in numpy (a query's 100 openings: ~0.2 ms,
    ~0.9 ms one by one)."""
    if not texts:
        return []
    try:
        points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    except UnicodeEncodeError:  # a lone surrogate: the per-text count takes it as it is
        return [script_of(t) for t in texts]
    if points.size and points.max() > 0xFFFF:  # outside the table: rare enough to count per text
        return [script_of(t) for t in texts]
    cjk = np.zeros(points.shape, dtype=bool)
    for lo, hi in _CJK_RANGES:
        cjk |= (points >= lo) & (points <= hi)
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths

    def per_text(mask: np.ndarray) -> list[int]:
        total = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
        counts: list[int] = (total[ends] - total[starts]).tolist()
        return counts

    n_cjk, letters = per_text(cjk), per_text(_bmp_letters()[points])
    return ["cjk" if n and c >= CJK_SHARE * n else "latin" for c, n in zip(n_cjk, letters)]


def other_script(query: str, chunks: Iterable[tuple[str, str]]) -> set[str]:
    """Ids of the (id, text) chunks written in another script than the query."""
    mine = script_of(query)
    pairs = list(chunks)
    scripts = scripts_of([text for _, text in pairs])
    return {chunk_id for (chunk_id, _), script in zip(pairs, scripts) if script != mine}


def language_aligned(hits: Sequence[ScoredChunk], other: Collection[str]) -> list[ScoredChunk]:
    """Dense hits re-scored so the other script's candidates have the same median as the query's own:
    a multilingual embedder scores any passage in the query's language a little higher, and that
    offset otherwise outranks the right passage in the other language (华为 above Tesla for 特斯拉公司)."""
    mine = [h.score for h in hits if h.chunk_id not in other]
    theirs = [h.score for h in hits if h.chunk_id in other]
    if len(mine) < MIN_GROUP or len(theirs) < MIN_GROUP:
        return list(hits)
    offset = statistics.median(mine) - statistics.median(theirs)
    shifted = [ScoredChunk(h.chunk_id, h.doc_id, h.score + offset) if h.chunk_id in other else h for h in hits]
    return sorted(shifted, key=lambda h: h.score, reverse=True)


def topical_unseen(aligned: Sequence[ScoredChunk], other: Collection[str], matched: Collection[str]) -> set[str]:
    """The chunks of `other` worth a BM25 stand-in: their aligned dense score reaches the median dense
    score of the passages BM25 did match (`matched`), or, when dense ranked none of those, the median
    of the dense path's candidates."""
    scores = {h.chunk_id: h.score for h in aligned}
    bar_from = [scores[c] for c in matched if c in scores] or list(scores.values())
    if not bar_from:
        return set()
    bar = statistics.median(bar_from)
    return {c for c in other if c in scores and scores[c] >= bar}


@dataclass
class StoodIn:
    """What fusion gets from the stand-in: the recall lists (dense aligned across scripts) and, per path,
    the chunks it is stood in for; `cosines` keeps the dense scores hits report."""

    per_path: dict[str, list[ScoredChunk]]
    unseen: dict[str, set[str]] | None
    cosines: dict[str, float]

    def report_cosines(self, fused: Iterable[FusedChunk]) -> None:
        """The aligned score ranks; the cosine stays what hits report (relevance, thresholds)."""
        for f in fused:
            if "dense" in f.path_scores:
                f.path_scores["dense"] = self.cosines[f.chunk_id]


class CrossLingualStandIn:
    """Reads the dense candidates' scripts from the metadata store and lets dense stand in for BM25."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        _bmp_letters()  # built now (~5 ms), not inside a query's budget

    def other_script_chunks(self, query: str, chunk_ids: list[str]) -> set[str]:
        """The chunks among `chunk_ids` written in another script than the query."""
        if not chunk_ids:
            return set()
        with self.sessions() as session:
            return other_script(query, session.connection().execute(_OPENINGS, {"ids": chunk_ids}).all())

    def apply(self, query: str, per_path: Mapping[str, list[ScoredChunk]]) -> StoodIn:
        """The recall lists as fusion takes them; unchanged without a dense list."""
        if "dense" not in per_path:
            return StoodIn(dict(per_path), None, {})
        dense = per_path["dense"]
        other = self.other_script_chunks(query, [c.chunk_id for c in dense])
        aligned = language_aligned(dense, other)
        unseen = None
        if "bm25" in per_path:
            unseen = {"bm25": topical_unseen(aligned, other, [c.chunk_id for c in per_path["bm25"]])}
        return StoodIn({**per_path, "dense": aligned}, unseen, {c.chunk_id: c.score for c in dense})
