"""Cross-lingual recall: a Chinese query finds the English passage about the same thing, and the reverse,
past same-word distractors in the query's own language (苹果 the fruit for 苹果公司)."""

from __future__ import annotations

import asyncio

from sieve.evals.crosslingual import DIRECTIONS, FOLDERS, hit_at, queries
from sieve.retrievers.crosslingual import language_aligned, script_of, scripts_of
from sieve.retrievers.fusion import FusionMode, fuse
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.catalog import get_kb
from sieve.stores.types import ScoredChunk, SearchFilter


def test_script_of_reads_the_writing_not_the_quoted_words():
    assert script_of("苹果公司") == script_of("华为发布了 Mate 60 Pro 手机") == "cjk"
    assert script_of("Apple Inc. (苹果) designs the iPhone") == script_of("Ελληνικά 2024") == "latin"


def test_a_batch_of_passages_gets_the_scripts_each_gets_alone():
    # the batch counts in numpy; CJK punctuation alone, letters outside the BMP and numerals are its edges
    texts = ["苹果公司", "Apple Inc. (苹果) designs the iPhone", "", "・・。", "𝒜𝒷 苹果", "华为发布了 Mate 60 Pro 手机",
             "Ελληνικά 2024", "½ Ⅻ 中 abcd", "abcd 中"]
    assert scripts_of(texts) == [script_of(t) for t in texts]
    assert scripts_of(texts[:4] + texts[5:]) == [script_of(t) for t in texts[:4] + texts[5:]]


def test_bm25_blindness_is_filled_by_the_dense_share():
    # x is in another script than the query: BM25 could not return it, dense ranked it first
    results = {"bm25": [ScoredChunk("same-word", "d1", 9.0)],
               "dense": [ScoredChunk("x", "d2", 0.9), ScoredChunk("same-word", "d1", 0.8)]}
    assert fuse(results, FusionMode.RRF)[0].chunk_id == "same-word"
    assert fuse(results, FusionMode.RRF, unseen={"bm25": {"x"}})[0].chunk_id == "x"
    # only a path that ran is stood in for
    assert fuse({"dense": results["dense"]}, FusionMode.RRF, unseen={"bm25": {"x"}})[0].score == 1 / 61


def test_dense_scores_are_aligned_across_scripts():
    hits = [ScoredChunk(c, c, s) for c, s in [("zh1", 0.90), ("zh2", 0.88), ("zh3", 0.87), ("en1", 0.89),
                                                 ("en2", 0.80), ("en3", 0.79)]]
    aligned = language_aligned(sorted(hits, key=lambda h: -h.score), {"en1", "en2", "en3"})
    assert aligned[0].chunk_id == "en1"  # it stands out among English passages as zh1 does not among Chinese
    few = hits[:4]
    assert language_aligned(few, {"en1"}) == few  # one passage in a script: no median to align


def test_a_query_finds_the_passage_in_the_other_language(stack):
    # the mixed KB: each target is in the other language; a same-word distractor sits in the query's own
    from sieve.ingest.pipeline import Ingestor

    Ingestor(stack).ingest_paths([FOLDERS["mixed"]], "mixed", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "mixed").id)
    retriever = HybridRetriever(stack)
    asked = queries()["mixed"]
    try:
        found = {d: asyncio.run(hit_at(retriever, flt, asked[d], k=3)) for d in DIRECTIONS}
    finally:
        retriever.close()
    missed = {q: top for d in DIRECTIONS for q, top in found[d].ranked.items() if asked[d][q] not in top}
    assert not missed, f"targets not in the top 3: {missed}"
    # the Chinese company names beat the Chinese fruit, river and inventor that share their words
    assert found["zh->en"].first == found["zh->en"].queries == len(asked["zh->en"])


def test_off_topic_passages_in_the_other_script_do_not_outrank_on_topic_ones(stack, sample_kb):
    # BM25 cannot see English passages for a Chinese query; the dense stand-in for it goes to the
    # English passage about the company, not to every English passage (photosynthesis, marathon running)
    from sieve.ingest.pipeline import Ingestor

    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "demo").id)
    retriever = HybridRetriever(stack)
    try:
        ranked = [h.filename for h in asyncio.run(retriever.retrieve("苹果公司", flt, k=10)).hits]
    finally:
        retriever.close()
    on_topic = ["apple-inc.md", "apple-china.md", "apple-phones.md", "shandong-apples.md"]  # all about 苹果
    assert set(ranked[:2]) == {"apple-inc.md", "apple-china.md"}, ranked
    last_on_topic = max(ranked.index(name) for name in on_topic)
    assert ranked.index("photosynthesis.txt") > last_on_topic, ranked
    assert ranked.index("marathon.txt") > last_on_topic, ranked
