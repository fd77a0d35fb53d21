"""Deterministic grading: keep a passage when it is relevant enough *and* states an answer.

Relevance alone cannot tell a passage that answers from one that is merely on topic (news about
the same event, the same company in another year). So a kept passage must also hold evidence:

- strong: one sentence holding all of the question's key terms plus something of the kind
  the question asks for (a number for "多少/how many", a date for "什么时候/when", a name for
  "谁/who", a place for "哪里/where"), and every number of the question (years) in the passage; or
- corroborated: an answer candidate of that kind, stated next to key terms (at least two) in
  two passages from different sources.

Coverage of key terms is weighted by how rare a term is among the retrieved passages: passages
that share the topic words but miss the one constraint that tells the answer apart (全球 in
"宝马全球销量") do not cover the question.

`bench/bench_graph.py` calibrates the constants (`Thresholds`) on rgb-zh answer_or_refuse.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

import rjieba

from sieve.graphs.state import Passage
from sieve.graphs.text import EN_STOPWORDS, ZH_FUNCTION_CHARS, ZH_STOP_TOKENS, singular, split_sentences
from sieve.prompts.language import Lang

Kind = Literal["work", "number", "date", "person", "place", "name", "other"]
Outcome = Literal["kept", "below_threshold", "no_evidence"]

# First match wins. Interrogatives (多少, 什么时候) decide before the nouns around them (冠军, 票房):
# "冠军获得了多少奖金" asks for a sum; a noun that names a work decides before everything
# ("票房冠军" asks for a film). "name" is any proper noun: a champion may be a team or a country.
_KINDS_ZH: list[tuple[Kind, re.Pattern[str]]] = [
    ("work", re.compile(r"哪部|哪首|哪本|什么电影|什么歌|部电影|最佳(?:影片|电影|电视剧|剧集|歌曲|专辑|纪录片)|票房冠军")),
    ("date", re.compile(r"什么时候|何时|哪天|哪一天|哪年|哪一年|几月|几号")),
    ("number", re.compile(r"多少|多久|几|多大|多高|多长|多重")),
    ("name", re.compile(r"冠军|得主|主席国|哪个队|哪支|哪家|球队|俱乐部|哪个公司|效力于|哪个平台")),
    ("person", re.compile(r"谁|哪位|主演|导演|演员|总统|总理|首相|主持人|创始人|董事长|作者")),
    ("place", re.compile(r"哪里|在哪|哪儿|哪个国家|哪些国家|哪国|哪个城市|地点|举办地|举行地|哪座")),
    ("date", re.compile(r"时间|日期")),
    ("number", re.compile(r"比分|票房|[产销出进]口?量|人数|数量|病例数|席位|增长|上涨|下降|震级|人口|排名|名次|金额|价格|成绩")),
]
_KINDS_EN: list[tuple[Kind, re.Pattern[str]]] = [
    ("work", re.compile(r"\bwhich (?:movie|film|book|song|album|show|series)\b|\bbest (?:picture|film|movie)\b", re.I)),
    ("date", re.compile(r"\bwhen\b|\bwhat (?:year|date|day|month)\b|\bwhich year\b", re.I)),
    ("number", re.compile(r"\bhow (?:many|much|long|old|tall|big|far|high)\b|\bwhat (?:percentage|number|amount)\b", re.I)),
    ("name", re.compile(r"\bwhich (?:team|club|company|firm|party)\b|\bchampion\b|\bwinner\b", re.I)),
    ("person", re.compile(r"\bwho\b|\bwhom\b|\bwhose\b", re.I)),
    ("place", re.compile(r"\bwhere\b|\bwhich (?:country|countries|city|place)\b", re.I)),
]
_ZH_PROPER_TAGS = {"nr", "nrfg", "nrt", "nz", "ns", "nt", "eng"}
_ZH_KIND_TAGS: dict[Kind, set[str]] = {"person": {"nr", "nrfg", "nrt"}, "place": {"ns"}, "work": set()}
# a quantity carries a unit (or a decimal point): bare integers are mostly dates, times and phone numbers
_NUMBER = re.compile(
    r"\d+(?:[.,]\d+)*\s*(?:%|％|万|亿|元|美元|人|次|个|名|辆|吨|斤|公斤|千克|公里|米|分|秒|座|家|所|项|件|场|届|倍|岁|天|年|枚|块|台|部|张|位|架|艘|只|户|支|席|强|"
    r"percent|million|billion|thousand|people|times)|\d+\.\d+|[一二三四五六七八九十两]+(?:次|届|名|个|位|座|强)|冠军|亚军|季军|第[一二三四五六七八九十\d]+名"
)
_YEAR = re.compile(r"(?:19|20)\d\d年?")
_DATE = re.compile(
    r"\d{1,2}月\d{1,2}[日号]|\d{4}年\d{1,2}月|\d{1,2}月|[一二三四五六七八九十]{1,3}月|"
    r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}\b|\b(?:19|20)\d\d\b"
)
_QUOTED = re.compile(r"《([^》]{1,20})》|“([^”]{1,20})”|\"([^\"]{1,30})\"")
_EN_WORD = re.compile(r"[A-Za-z0-9]+")
_ZH_WEAK_CHARS = ZH_FUNCTION_CHARS | set("上下里中内外叫年月日")
# words naming the asked-for slot: the answering sentence states the value, not the slot's name
_ZH_SLOT_WORDS = {"具体", "名字", "名称", "时间", "日期", "地点", "类型", "情况", "哪部", "哪些", "分别"}
# light verbs and slot nouns: "how does X work", "where does X come from" ask about X
_EN_SLOT_WORDS = {"come", "make", "work", "happen", "mean", "use", "get", "go", "kind", "type", "name", "called"}
_EN_NAME = re.compile(r"\b[A-Z][a-zA-Z\-]+(?:\s+[A-Z][a-zA-Z\-]+)*")


class Sentence(NamedTuple):
    coverage: float  # share of the question's key terms the sentence holds
    matched: int  # how many key terms it holds
    candidates: frozenset[str]  # things of the asked-for kind it states that the question does not
    typed: bool  # it states something of the asked-for kind (always, for open questions)


@dataclass(frozen=True)
class Evidence:
    """What one passage offers, independent of thresholds (so calibration can reuse it)."""

    relevance: float
    has_numbers: bool  # every number of the question (a year, a line number) occurs in the passage
    sentences: list[Sentence]
    group: int  # near-duplicate passages share a group and do not corroborate each other


@dataclass(frozen=True)
class Graded:
    kept: list[Passage]
    outcome: Outcome
    best_relevance: float


@dataclass(frozen=True)
class GradeLimits:
    min_relevance: float
    evidence: float  # coverage at which a sentence's candidates count toward corroboration
    strong_evidence: float  # coverage at which one typed sentence is enough on its own


def answer_kind(question: str, lang: Lang) -> Kind:
    for kind, pattern in _KINDS_ZH if lang == "zh" else _KINDS_EN:
        if pattern.search(question):
            return kind
    return "other"


def key_terms(question: str, lang: Lang) -> list[str]:
    """The question's content words: what an answering sentence is expected to repeat."""
    if lang == "zh":
        tokens = [t for t in rjieba.cut(question)
                  if any(ch.isalnum() for ch in t) and t not in ZH_STOP_TOKENS and t not in _ZH_SLOT_WORDS]
        # single characters like 上/叫/年 are grammar here, not topic (digits and latin letters stay)
        content = [t for t in tokens if len(t) > 1 or t.isascii() or t not in _ZH_WEAK_CHARS]
        return list(dict.fromkeys(content))
    words = [singular(w.lower()) for w in _EN_WORD.findall(question)
             if w.lower() not in EN_STOPWORDS and w.lower() not in _EN_SLOT_WORDS]
    return list(dict.fromkeys(words))


def gather_evidence(question: str, passages: list[Passage], lang: Lang) -> list[Evidence]:
    kind = answer_kind(question, lang)
    terms = key_terms(question, lang)
    numbers = set(re.findall(r"\d+", question))
    groups = _distinct(passages)
    weights = _term_weights(terms, [f"{p.get('title', '')}\n{p['text']}" for p in passages], lang)
    evidence: list[Evidence] = []
    for passage, group in zip(passages, groups):
        sentences = []
        title = passage.get("title", "")
        for text in split_sentences(passage["text"]) or [passage["text"]]:
            found = frozenset(answer_candidates(text, kind, question, lang))
            # an open question ("what does X do") asks for no particular kind: any sentence may answer;
            # the document's title is context every sentence of it shares ("2023年工作总结")
            hits = _hits(terms, f"{title}\n{text}", lang)
            matched = sum(hits)
            coverage = sum(w for w, hit in zip(weights, hits) if hit) / sum(weights) if terms else 0.0
            sentences.append(Sentence(coverage, matched, found, kind == "other" or bool(found)))
        evidence.append(Evidence(passage["relevance"] or 0.0, all(n in passage["text"] for n in numbers), sentences, group))
    return evidence


def decide(evidence: list[Evidence], limits: GradeLimits) -> list[int]:
    """Indices of the passages to keep: relevant enough, and strong or corroborated evidence."""
    relevant = [i for i, e in enumerate(evidence) if e.relevance >= limits.min_relevance]
    # a corroborating sentence holds the share `evidence` of the key terms, and never just one of several
    def corroborating(s: Sentence) -> bool:
        return s.coverage >= limits.evidence and (s.matched >= 2 or s.coverage == 1.0)

    stated = {i: frozenset().union(*(s.candidates for s in evidence[i].sentences if corroborating(s))) for i in relevant}
    kept = []
    for i in relevant:
        e = evidence[i]
        strong = e.has_numbers and any(s.typed and s.coverage >= limits.strong_evidence for s in e.sentences)
        others = frozenset().union(*(stated[j] for j in relevant if evidence[j].group != e.group))
        if strong or stated[i] & others:
            kept.append(i)
    return kept


def grade_passages(question: str, passages: list[Passage], lang: Lang, limits: GradeLimits, max_kept: int) -> Graded:
    """Which passages to keep (most relevant first), or why none: too irrelevant, or no stated answer."""
    ranked = sorted(passages, key=lambda p: p["relevance"] or 0.0, reverse=True)
    best = (ranked[0]["relevance"] or 0.0) if ranked else 0.0
    if best < limits.min_relevance:
        return Graded([], "below_threshold", best)
    kept = [ranked[i] for i in decide(gather_evidence(question, ranked, lang), limits)]
    return Graded(kept[:max_kept], "kept" if kept else "no_evidence", best)


def _hits(terms: list[str], sentence: str, lang: Lang) -> list[bool]:
    if lang == "zh":
        return [_zh_term_in(term, sentence) for term in terms]
    words = {singular(w.lower()) for w in _EN_WORD.findall(sentence)}
    return [any(_same_stem(term, word) for word in words) for term in terms]


def _term_weights(terms: list[str], passages: list[str], lang: Lang) -> list[float]:
    """Rarer among the retrieved passages, heavier: the topic words (宝马, 2021) are in every passage,
    the constraint that tells the answer from the noise (全球, 克利夫兰) is in few or none."""
    n = len(passages)
    if not n:
        return [1.0] * len(terms)
    df = [sum(col) for col in zip(*(_hits(terms, p, lang) for p in passages))] if terms else []
    return [1.0 + math.log(n / max(d, 1)) for d in df]


def _zh_term_in(term: str, sentence: str) -> bool:
    """A compound counts when its words all occur: 华为公司 in "华为技术有限公司" (华为 + 公司)."""
    if term in sentence:
        return True
    parts = [w for w in rjieba.cut_for_search(term) if len(w) >= 2 and w != term]
    return len(term) >= 3 and bool(parts) and all(w in sentence for w in parts)


def _same_stem(a: str, b: str) -> bool:
    """A crude stemmer: "headquarter" matches "headquartered", "found" matches "founded", and the
    head of a compound its compounds ("phone" matches "smartphone")."""
    shorter, longer = sorted((a, b), key=len)
    return shorter == longer or (len(shorter) >= 4 and (longer.startswith(shorter) or longer.endswith(shorter)))


def answer_candidates(sentence: str, kind: Kind, question: str, lang: Lang) -> set[str]:
    """Things of the asked-for kind that the sentence states and the question does not."""
    if kind == "number":
        found = {m.group(0).strip() for m in _NUMBER.finditer(sentence)}
        found = {n for n in found if not _YEAR.fullmatch(n)}
    elif kind == "date":
        found = {m.group(0) for m in _DATE.finditer(sentence)}
    elif lang == "zh":
        tags = _ZH_KIND_TAGS.get(kind, _ZH_PROPER_TAGS)
        found = {w for w, tag in _zh_names_joined(rjieba.tag(sentence)) if tag in tags and len(w) >= 2}
        if kind in ("other", "work", "name"):
            found |= {q for groups in _QUOTED.findall(sentence) for q in groups if q}
    else:
        found = {m.group(0) for m in _EN_NAME.finditer(sentence)}
    return {c for c in found if c not in question}


def _zh_names_joined(tagged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """jieba cuts unknown names after the surname ("李" + "明远"): join them back."""
    joined: list[tuple[str, str]] = []
    for word, tag in tagged:
        previous = joined[-1] if joined else ("", "")
        if previous[1] == "nr" and len(previous[0]) == 1 and 1 <= len(word) <= 2 and "\u4e00" <= word[0] <= "\u9fff":
            joined[-1] = (previous[0] + word, "nr")
        else:
            joined.append((word, tag))
    return joined


def _distinct(passages: list[Passage]) -> list[int]:
    """A group id per passage; near-duplicates (the same text syndicated twice) share one."""
    groups: list[int] = []
    shingles: list[set[str]] = []
    for passage in passages:
        text = passage["text"]
        grams = {text[i : i + 2] for i in range(len(text) - 1)}
        # containment, not Jaccard: the same article cut at other boundaries is still the same source
        match = next((g for g, other in enumerate(shingles) if len(grams & other) > 0.6 * max(len(grams | other), 1)), None)
        if match is None:
            shingles.append(grams)
            match = len(shingles) - 1
        groups.append(match)
    return groups
