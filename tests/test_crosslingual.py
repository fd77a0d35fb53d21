"""Cross-lingual recall: a Chinese query finds the English passage about the same thing, and the reverse,
past same-word distractors in the query's own language (苹果 the fruit for 苹果公司)."""

from __future__ import annotations

import asyncio

from sieve.retrievers.crosslingual import language_aligned, script_of, scripts_of
from sieve.retrievers.fusion import FusionMode, fuse
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.catalog import get_kb
from sieve.stores.types import ScoredChunk, SearchFilter

DOCS = {
    "apple-inc.txt": "Apple Inc. is an American technology company headquartered in Cupertino, California. "
                     "It designs the iPhone, the iPad and Mac computers.",
    "amazon-com.txt": "Amazon.com, Inc. is an American e-commerce and cloud computing company founded by Jeff Bezos in Seattle.",
    "tesla-inc.txt": "Tesla, Inc. is an American electric car maker and clean energy company based in Austin, Texas, "
                     "known for the Model 3.",
    "great-wall-motor.txt": "Great Wall Motor is an automaker that sells SUVs and pickup trucks in many markets.",
    "panda-express.txt": "Panda Express is an American fast food restaurant chain that serves Chinese-style dishes "
                         "such as orange chicken.",
    "forbidden-planet.txt": "Forbidden Planet is a 1956 science fiction film about a starship crew visiting a distant planet.",
    "shandong-apples.txt": "山东烟台的苹果果园今年迎来丰收，红富士苹果个大味甜，果农忙着采摘和装箱。",
    "amazon-river.txt": "亚马逊河是南美洲最长的河流，流经巴西的热带雨林，孕育了丰富的物种。",
    "nikola-tesla.txt": "尼古拉·特斯拉是一位发明家和电气工程师，他发明了交流电系统和感应电动机。",
    "great-wall.txt": "长城是中国古代修建的军事防御工程，东起山海关，西至嘉峪关，绵延数千公里。",
    "giant-panda.txt": "大熊猫是中国特有的熊科动物，主要以竹子为食，栖息在四川和陕西的山区森林里。",
    "forbidden-city.txt": "故宫是明清两代的皇家宫殿，位于北京中轴线的中心，现为故宫博物院。",
    "huawei.txt": "华为技术有限公司是一家总部位于深圳的通信设备和智能手机制造商。",
    "phone-review.txt": "这款国产手机的屏幕很亮，电池续航也不错，拍照效果让人满意。",
}
# each target is in the other language; a same-word distractor sits in the query's own language
ZH_TO_EN = {"苹果公司": "apple-inc.txt", "亚马逊公司": "amazon-com.txt", "特斯拉电动汽车公司": "tesla-inc.txt"}
EN_TO_ZH = {"Great Wall of China": "great-wall.txt", "giant panda": "giant-panda.txt",
            "Forbidden City palace": "forbidden-city.txt", "Huawei": "huawei.txt"}


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


def test_a_query_finds_the_passage_in_the_other_language(stack, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    from sieve.ingest.pipeline import Ingestor

    Ingestor(stack).ingest_paths([folder], "mixed", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "mixed").id)
    retriever = HybridRetriever(stack)

    async def top3(query: str) -> list[str]:
        return [h.filename for h in (await retriever.retrieve(query, flt, k=3)).hits]

    try:
        zh = {q: asyncio.run(top3(q)) for q in ZH_TO_EN}
        en = {q: asyncio.run(top3(q)) for q in EN_TO_ZH}
    finally:
        retriever.close()
    missed = {q: top for q, top in {**zh, **en}.items() if {**ZH_TO_EN, **EN_TO_ZH}[q] not in top}
    assert not missed, f"targets not in the top 3: {missed}"
    # the Chinese company names beat the Chinese fruit, river and inventor that share their words
    assert all(top[0] == ZH_TO_EN[q] for q, top in zh.items())


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
