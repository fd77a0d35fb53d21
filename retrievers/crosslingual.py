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
from collections.abc import Collection, Iterable, Sequence

from sieve.stores.types import ScoredChunk

MIN_GROUP = 3  # candidates per script for a median worth aligning
CJK_SHARE = 0.2  # a passage this share of whose letters are CJK is Chinese/Japanese, whatever else it quotes
SCRIPT_SAMPLE = 200  # characters of a passage read to tell its script


# CJK ideographs, compatibility ideographs, kana, hangul (every one of them a letter)
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")


def script_of(text: str) -> str:
    """"cjk" or "latin" (every other alphabet: BM25 tokenises both the same way there)."""
    # counted in C (a regex, map over a builtin): a query reads 100 candidates' openings, ~5 ms in a Python loop
    letters = sum(map(str.isalpha, text))
    if not letters:
        return "latin"
    return "cjk" if len(_CJK.findall(text)) >= CJK_SHARE * letters else "latin"


def other_script(query: str, chunks: Iterable[tuple[str, str]]) -> set[str]:
    """Ids of the (id, text) chunks written in another script than the query."""
    mine = script_of(query)
    return {chunk_id for chunk_id, text in chunks if script_of(text) != mine}


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
