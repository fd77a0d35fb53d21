"""Deterministic grading: keep a passage when it is relevant enough *and* states an answer.

Relevance alone cannot tell a passage that answers from one that is merely on topic (news about
the same event, the same company in another year). So each passage is described by evidence:

- how much of the question's key terms its best sentence holds, weighted by how rare a term is
  among the retrieved passages (passages that share the topic words but miss the one constraint
  that tells the answer apart, 全球 in "宝马全球销量", do not cover the question); the document's
  title and the passage's opening sentence count as context of every sentence ("it"), and the
  subjects of the question (names, codes, years) must all be there;
- whether a sentence states something of the kind the question asks for (a number for
  "多少/how many", a date for "什么时候/when", a person for "谁/who", a place for "哪里/where");
- whether the question's numbers (years) occur, whether another source states the same answer;
- in English, question words a sentence paraphrases, by e5 word vectors ("launched" for
  "released", "chief executive" for "CEO"), and how well the things it states fit what is asked
  ("168 grams" for "weigh", not "19 hours"): on-topic passages about the same subject state its
  other attributes, and only this tells them from the one that answers.

A learned model (`evidence_model.py`, trained by `evals/train_evidence.py`) turns the evidence
into the probability that the passage states the answer; passages reaching the language's
calibrated threshold are kept, and a refusal names the evidence that decided it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import rjieba

from sieve.graphs.shared.evidence_model import FIT_UNSEEN, evidence_model
from sieve.graphs.shared.state import Passage
from sieve.graphs.shared.text import EN_STOPWORDS, ZH_FUNCTION_CHARS, ZH_STOP_TOKENS, singular, split_sentences
from sieve.prompts.language import Lang

Kind = Literal["work", "number", "date", "person", "place", "name", "value", "other"]
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
    ("number", re.compile(r"\bhow (?:many|much|long|old|tall|big|far|high|heavy|loud|fast|hot|often|large|strong)\b|"
                            r"\bwhat (?:percentage|number|amount)\b"
                            r"|\bwhat is the (?:price|weight|length|height|size|capacity|range|cost)\b", re.I)),
    ("name", re.compile(r"\bwhich (?:team|club|company|firm|party)\b|\bchampion\b|\bwinner\b", re.I)),
    ("person", re.compile(r"\bwho\b|\bwhom\b|\bwhose\b", re.I)),
    ("place", re.compile(r"\bwhere\b|\bwhich (?:country|countries|city|place)\b", re.I)),
    # "What screen size does X have?", "Which RFC defines X?", "What is the battery life of X?": one
    # particular value (a quantity, a name, a code), not an explanation ("What does X do?")
    ("value", re.compile(r"^\s*(?:what|which)\s+(?!(?:is|are|was|were|does|do|did|can|could|should|would|will|has|have|had)\b)"
                         r"[a-z]|^\s*what (?:is|are|was|were) the [\w' -]+ (?:of|for|on|at|in)\b", re.I)),
]
# synonym matching embeds the words of a few sentences: bounded, as it is most of grading's cost
SYNONYM_SENTENCES = 6
SYNONYM_WORDS = 24
SYNONYM_COSINE = 0.9  # e5 passage-side cosine of two English words that mean the same here
# kind fit (`with_synonyms`): the answer candidates of this many sentences, at most this many of their words
FIT_SENTENCES = 12
FIT_WORDS = 32
WordVectors = Callable[[list[str]], np.ndarray]
"""`texts -> L2-normalised e5 vectors` (passage side), one row per text."""
_CORROBORATION = 0.3  # key-term coverage of a sentence whose answer candidates may corroborate another source's
_ZH_PROPER_TAGS = {"nr", "nrfg", "nrt", "nz", "ns", "nt", "eng"}
_ZH_KIND_TAGS: dict[Kind, set[str]] = {"person": {"nr", "nrfg", "nrt"}, "place": {"ns"}, "work": set()}
# a quantity carries a unit (or a decimal point): bare integers are mostly dates, times and phone numbers
_NUMBER = re.compile(
    r"\d+(?:[.,]\d+)*\s*(?:%|％|万|亿|元|美元|人|次|个|名|辆|吨|斤|公斤|千克|公里|米|分|秒|座|家|所|项|件|场|届|倍|岁|天|年|枚|块|台|部|张|位|架|艘|只|户|支|席|强|"
    r"percent|million|billion|thousand|people|times)|\d+\.\d+|[一二三四五六七八九十两]+(?:次|届|名|个|位|座|强)|冠军|亚军|季军|第[一二三四五六七八九十\d]+名"
)
# in English a quantity is a number (digits or a word) followed by its unit, whatever the unit
_EN_NUMBER = re.compile(
    r"\b(?:\d+(?:[.,]\d+)*\s*(?:%|[A-Za-z]+\b)|(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"fifteen|twenty|thirty|forty|fifty|sixty|hundred|a dozen|no)\s+(?:and a half\s+)?[a-z]+)", re.I)
_EN_NOT_UNIT = {"and", "or", "to", "of", "the", "in", "on", "at", "by", "for", "with", "from", "a", "an", "is", "was"}
_YEAR = re.compile(r"(?:19|20)\d\d年?")
_DATE = re.compile(
    r"\d{1,2}月\d{1,2}[日号]|\d{4}年\d{1,2}月|\d{1,2}月|[一二三四五六七八九十]{1,3}月|"
    r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}\b|\b(?:1[5-9]|20)\d\d\b"
)
_QUOTED = re.compile(r"《([^》]{1,20})》|“([^”]{1,20})”|\"([^\"]{1,30})\"")
_EN_WORD = re.compile(r"[A-Za-z0-9]+")
_CODE = re.compile(r"\b[A-Z][A-Z0-9]*(?:[/.\-][A-Z0-9]+)*\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b")  # TCP, C, HTTP/2, iPhone
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ZH_WEAK_CHARS = ZH_FUNCTION_CHARS | set("上下里中内外叫年月日")
# words naming the asked-for slot: the answering sentence states the value, not the slot's name
_ZH_SLOT_WORDS = {"具体", "名字", "名称", "时间", "日期", "地点", "类型", "情况", "哪部", "哪些", "分别"}
# light verbs and slot nouns: "how does X work", "where does X come from" ask about X
_EN_SLOT_WORDS = {"come", "make", "work", "happen", "mean", "use", "get", "go", "kind", "type", "name", "called"}
_EN_NAME = re.compile(r"\b[A-Z][a-zA-Z\-]+(?:\s+[A-Z][a-zA-Z\-]+)*")


class Sentence(NamedTuple):
    text: str
    coverage: float  # weighted share of the question's key terms the sentence (with its title) holds
    matched: int  # how many key terms it holds
    candidates: frozenset[str]  # things of the asked-for kind it states that the question does not
    typed: bool  # it states something of the asked-for kind (always, for open questions)
    missing: tuple[str, ...]  # the key terms it lacks
    anchored: bool  # it (with its context) names every subject of the question ("Lumen X1", 2022年)
    predicate: float  # weighted coverage of the question's other key terms (what is asked about the subject)
    asked: int  # how many such other key terms the question has
    unmatched: tuple[str, ...]  # those of them the sentence does not repeat
    paraphrased: float  # share of them it repeats or paraphrases (repeats only, until `with_synonyms`)
    # how well what it states fits what is asked: the best cosine of its answer candidates' words with
    # the question's asked-about words ("grams" for "weigh", "euros" for "cost"), `with_synonyms`
    fit: float = FIT_UNSEEN


@dataclass(frozen=True)
class Evidence:
    """What one passage offers, independent of thresholds (so calibration can reuse it)."""

    relevance: float
    has_numbers: bool  # every number of the question (a year, a line number) occurs in the passage
    sentences: list[Sentence]
    group: int  # near-duplicate passages share a group and do not corroborate each other
    corroborated: bool  # an answer candidate it states is stated by another source too
    open_question: bool  # the question asks for no particular kind of thing
    synonyms: bool = False  # sentences were checked for paraphrased question words (`with_synonyms`)
    asked_terms: tuple[str, ...] = ()  # the question's key terms other than its subjects: what it asks about them


@dataclass(frozen=True)
class Graded:
    kept: list[Passage]
    outcome: Outcome
    best_relevance: float
    explanation: str = ""  # for a refusal: the evidence that decided it, in the question's language


@dataclass(frozen=True)
class GradeLimits:
    min_relevance: float  # below it a passage is off topic, whatever it says
    evidence: float | None = None  # probability an answering passage reaches; None = the model's, per language


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


def subject_terms(question: str, terms: list[str], lang: Lang) -> set[str]:
    """The key terms naming what the question is about: names, codes and numbers ("Lumen X1", RCEP,
    2022), as opposed to what it asks about them."""
    if lang == "zh":
        # "苹果公司的CEO", "2022年星河公司的营收": what stands before the first 的 is what the question is about
        head, particle, _ = question.partition("的")
        tagged = rjieba.tag(question)
        named = {w for w, tag in tagged if tag in _ZH_PROPER_TAGS - {"eng"} or tag == "m"}
        if not particle:
            named |= {w for w, tag in tagged if tag == "eng"}
        return {t for t in terms if (particle and t in head) or t in named or any(ch.isdigit() for ch in t)}
    words = _EN_WORD.findall(question)
    named = {singular(w.lower()) for i, w in enumerate(words)
             if any(ch.isdigit() for ch in w) or (i > 0 and w[0].isupper() and not w.isupper())}
    return {t for t in terms if t in named}


class Reading(NamedTuple):
    """What one passage holds for one question, whichever passages it is graded among: each sentence
    with the answer candidates it states and the key terms it holds (with the passage's context), and
    the key terms its title and text hold (how rare a term is among the passages)."""

    sentences: tuple[tuple[str, frozenset[str], tuple[bool, ...]], ...]
    held: tuple[bool, ...]


class KeptReadings(NamedTuple):
    """`read_passages` of the passages grading kept, for the answer over them to reuse."""

    question: str
    lang: Lang
    chunk_ids: tuple[str, ...]
    readings: tuple[Reading, ...]

    def of(self, question: str, lang: Lang, passages: list[Passage]) -> list[Reading] | None:
        """The readings when they are of these passages for this question, else None."""
        same = (question, lang, tuple(p["chunk_id"] for p in passages)) == (self.question, self.lang, self.chunk_ids)
        return list(self.readings) if same else None


def read_passages(question: str, passages: list[Passage], lang: Lang) -> list[Reading]:
    """The sentence splitting, tagging and term matching of `gather_evidence`: most of its work."""
    kind = answer_kind(question, lang)
    terms = key_terms(question, lang)
    readings = []
    for passage in passages:
        sentences = []
        # the document's title is context every sentence of it shares ("2023年工作总结"); so is the
        # passage's opening sentence, which names the subject that later sentences call "it"
        split = split_sentences(passage["text"]) or [passage["text"]]
        context = f"{passage.get('title', '')}\n{split[0]}"
        foreign = language_of(passage["text"]) != lang
        for text in split:
            found = frozenset(answer_candidates(text, kind, question, lang))
            hits = _hits(terms, f"{context}\n{text}", lang)
            if foreign:  # a Chinese question over an English document: its Chinese words are not held against it
                hits = [hit or _foreign_term(t, lang) for t, hit in zip(terms, hits)]
            sentences.append((text, found, tuple(hits)))
        held = _hits(terms, f"{passage.get('title', '')}\n{passage['text']}", lang) if terms else []
        readings.append(Reading(tuple(sentences), tuple(held)))
    return readings


def gather_evidence(question: str, passages: list[Passage], lang: Lang,
                    readings: list[Reading] | None = None) -> list[Evidence]:
    """Each passage's sentences scored against the question's key terms and asked-for kind; `readings`:
    the passages' `read_passages` where an earlier step made them (the same question, language and passages)."""
    kind = answer_kind(question, lang)
    terms = key_terms(question, lang)
    subjects = subject_terms(question, terms, lang)
    numbers = set(re.findall(r"\d+", question))
    groups = _distinct(passages)
    readings = readings if readings is not None else read_passages(question, passages, lang)
    weights = _term_weights(len(terms), [r.held for r in readings])
    rest = sum(w for t, w in zip(terms, weights) if t not in subjects)
    per_passage: list[list[Sentence]] = []
    for reading in readings:
        sentences = []
        for text, found, hits in reading.sentences:
            coverage = sum(w for w, hit in zip(weights, hits) if hit) / sum(weights) if terms else 0.0
            missing = tuple(t for t, hit in zip(terms, hits) if not hit)
            anchored = all(hit for t, hit in zip(terms, hits) if t in subjects)
            predicate = sum(w for t, w, hit in zip(terms, weights, hits) if hit and t not in subjects) / rest if rest else 1.0
            asked = [hit for t, hit in zip(terms, hits) if t not in subjects]
            unmatched = tuple(t for t, hit in zip(terms, hits) if t not in subjects and not hit)
            sentences.append(Sentence(text, coverage, sum(hits), found, kind == "other" or bool(found), missing,
                                      anchored, predicate, len(asked), unmatched,
                                      sum(asked) / len(asked) if asked else 1.0))
        per_passage.append(sentences)

    # a corroborating sentence holds a third of the key terms, and never just one of several
    def stated(sentences: list[Sentence]) -> frozenset[str]:
        return frozenset().union(*(s.candidates for s in sentences if s.coverage >= _CORROBORATION
                                   and (s.matched >= 2 or s.coverage == 1.0)))

    statements = [stated(s) for s in per_passage]
    return [
        Evidence(passage["relevance"] or 0.0, all(n in passage["text"] for n in numbers), sentences, group,
                 bool(statements[i] & frozenset().union(*(statements[j] for j in range(len(passages))
                                                          if groups[j] != group))), kind == "other",
                 asked_terms=tuple(t for t in terms if t not in subjects))
        for i, (passage, sentences, group) in enumerate(zip(passages, per_passage, groups))
    ]


def _synonym_candidates(evidence: list[Evidence], lang: Lang) -> list[tuple[float, int, int]]:
    # only English: single Chinese words embed too close to their neighbours in topic (销量 and 营收)
    # to tell a synonym from a sibling
    if lang != "en":
        return []
    return sorted(((e.relevance, i, j) for i, e in enumerate(evidence) for j, s in enumerate(e.sentences)
                   if s.typed and s.anchored and s.unmatched), reverse=True)[:SYNONYM_SENTENCES]


def _paraphrase_words(evidence: list[Evidence], lang: Lang) -> tuple[list[str], list[str]]:
    """Question words not repeated by the promising sentences, and those sentences' words."""
    candidates = _synonym_candidates(evidence, lang)
    terms = sorted({t for _, i, j in candidates for t in evidence[i].sentences[j].unmatched})
    words: dict[str, None] = {}
    for _, i, j in candidates:
        words.update(dict.fromkeys(w for w in content_words(evidence[i].sentences[j].text) if w not in terms))
    return (terms, list(words)[:SYNONYM_WORDS]) if words else ([], [])


def _fit_sentences(evidence: list[Evidence], lang: Lang) -> list[tuple[int, int]]:
    # English only, as synonyms: single Chinese words embed too close to their topic's neighbours
    if lang != "en" or not evidence or not evidence[0].asked_terms:
        return []
    ranked = sorted(((e.relevance, i, j) for i, e in enumerate(evidence) for j, s in enumerate(e.sentences)
                     if s.typed and s.anchored and s.candidates), reverse=True)
    return [(i, j) for _, i, j in ranked[:FIT_SENTENCES]]


def _fit_words(evidence: list[Evidence], lang: Lang) -> list[str]:
    """The question's asked-about words, then the words of the candidates `_fit_sentences` state."""
    sentences = _fit_sentences(evidence, lang)
    if not sentences:
        return []
    words = dict.fromkeys(w for i, j in sentences for c in sorted(evidence[i].sentences[j].candidates)
                          for w in content_words(c))
    return list(evidence[0].asked_terms) + list(words)[:FIT_WORDS] if words else []


def synonym_words(evidence: list[Evidence], lang: Lang) -> list[str]:
    """The words `with_synonyms` needs vectors for: question words not repeated and the words of the
    sentences that may paraphrase them; the question's asked-about words and the answer candidates' words."""
    terms, words = _paraphrase_words(evidence, lang)
    return list(dict.fromkeys(terms + words + _fit_words(evidence, lang)))


def with_synonyms(evidence: list[Evidence], lang: Lang, vectors: WordVectors,
                  word_mean: np.ndarray | None = None) -> list[Evidence]:
    """Evidence whose promising sentences also count question words they paraphrase ("launched" for
    "released", "display" for "screen"), by the cosine of the two words' e5 vectors, and whose
    candidate answers are scored by how well they fit what is asked (`Sentence.fit`).

    Only sentences that already name the subjects and state something of the asked-for kind are
    looked at, and a bounded number of words is embedded (`synonym_words`). Fit compares vectors
    centred on `word_mean` (the embedder's mean English word vector, from the evidence model):
    raw e5 cosines of any two words crowd around 0.85.
    """
    words = synonym_words(evidence, lang)
    if not words:
        return evidence
    vector = dict(zip(words, vectors(words)))
    updated = [list(e.sentences) for e in evidence]
    terms, others = _paraphrase_words(evidence, lang)
    if terms:
        close = (np.stack([vector[t] for t in terms]) @ np.stack([vector[w] for w in others]).T) >= SYNONYM_COSINE
        synonyms = {t: {w for w, hit in zip(others, row) if hit} for t, row in zip(terms, close)}
        for _, i, j in _synonym_candidates(evidence, lang):
            sentence = updated[i][j]
            present = set(content_words(sentence.text))
            found = sum(1 for t in sentence.unmatched if synonyms[t] & present)
            updated[i][j] = sentence._replace(paraphrased=min(1.0, sentence.paraphrased + found / sentence.asked))
    mean = np.asarray(evidence_model().word_mean if word_mean is None else word_mean, dtype=np.float32)
    fit_words = _fit_words(evidence, lang)
    if fit_words and len(mean) == len(vector[fit_words[0]]):  # another embedder's space: fit stays unseen
        centred = {w: (vector[w] - mean) / max(float(np.linalg.norm(vector[w] - mean)), 1e-9) for w in fit_words}
        asked = np.stack([centred[t] for t in evidence[0].asked_terms])
        for i, j in _fit_sentences(evidence, lang):
            said = [centred[w] for c in updated[i][j].candidates for w in content_words(c) if w in centred]
            if said:
                updated[i][j] = updated[i][j]._replace(fit=float(np.max(np.stack(said) @ asked.T)))
    return [dataclasses.replace(e, sentences=updated[i], synonyms=True) for i, e in enumerate(evidence)]


def grade_passages(question: str, passages: list[Passage], lang: Lang, limits: GradeLimits, max_kept: int,
                   vectors: WordVectors | None = None) -> Graded:
    """Which passages to keep (most likely answer first), or why none: too irrelevant, or no stated answer.

    `vectors` embeds words for synonym matching; without it paraphrases go uncounted. (The grade
    node runs the same steps with the embedder called asynchronously in between.)
    """
    ranked = ranked_by_relevance(passages)
    best = (ranked[0]["relevance"] or 0.0) if ranked else 0.0
    if best < limits.min_relevance:
        return Graded([], "below_threshold", best)
    evidence = gather_evidence(question, ranked, lang)
    if vectors is not None:
        evidence = with_synonyms(evidence, lang, vectors)
    return grade_evidence(question, ranked, evidence, lang, limits, max_kept)


def ranked_by_relevance(passages: list[Passage]) -> list[Passage]:
    return sorted(passages, key=lambda p: p["relevance"] or 0.0, reverse=True)


def grade_evidence(question: str, ranked: list[Passage], evidence: list[Evidence], lang: Lang, limits: GradeLimits,
                   max_kept: int) -> Graded:
    """Keep the passages the evidence model finds likely enough to state the answer, most likely first."""
    best = (ranked[0]["relevance"] or 0.0) if ranked else 0.0
    if best < limits.min_relevance:
        return Graded([], "below_threshold", best)
    model = evidence_model()
    # unscored passages (no threshold to stand above): each is taken as just relevant enough
    floor = limits.min_relevance if math.isfinite(limits.min_relevance) else best
    probabilities = model.probabilities(evidence, lang, floor)
    # calibrated per language of the evidence: an English document answering a Chinese question is read
    # by the English rules (its names, its numbers), so the English threshold applies to it
    thresholds = [limits.evidence if limits.evidence is not None else model.threshold(language_of(p["text"]))
                  for p in ranked]
    order = sorted(range(len(ranked)), key=lambda i: -probabilities[i])
    kept = [ranked[i] for i in order
            if probabilities[i] >= thresholds[i] and evidence[i].relevance >= limits.min_relevance]
    if kept:
        return Graded(kept[:max_kept], "kept", best)
    return Graded([], "no_evidence", best, model.explain(evidence, order[0], question, lang, floor))


def content_words(sentence: str) -> list[str]:
    return [singular(w.lower()) for w in _EN_WORD.findall(sentence)
            if len(w) >= 3 and w.isalpha() and w.lower() not in EN_STOPWORDS]


def _hits(terms: list[str], sentence: str, lang: Lang) -> list[bool]:
    if lang == "zh":
        return [_zh_term_in(term, sentence) or _acronym_in(term, sentence) for term in terms]
    words = {singular(w.lower()) for w in _EN_WORD.findall(sentence)}
    return [any(_same_stem(term, word) for word in words) or _acronym_in(term, sentence) for term in terms]


def _acronym_in(term: str, sentence: str) -> bool:
    """"CEO" in "chief executive officer": consecutive words whose initials spell the term."""
    if not (2 <= len(term) <= 5 and term.isascii() and term.isalpha()):
        return False
    initials = "".join(w[0] for w in _EN_WORD.findall(sentence)).lower()
    return term.lower() in initials and any(
        "".join(w[0] for w in words).lower() == term.lower()
        for words in _windows(_EN_WORD.findall(sentence), len(term)))


def _windows(words: list[str], n: int) -> list[list[str]]:
    return [words[i : i + n] for i in range(len(words) - n + 1)]


def language_of(text: str) -> Lang:
    """A passage's language: Chinese when CJK characters make up a tenth of it (an English document
    quoting one Chinese name is still English)."""
    letters = [ch for ch in text if not ch.isspace()]
    return "zh" if letters and len(_CJK.findall(text)) >= 0.1 * len(letters) else "en"


def _foreign_term(term: str, lang: Lang) -> bool:
    """A term in the question's own script, which a passage in the other language cannot repeat."""
    return bool(_CJK.search(term)) if lang == "zh" else term.isascii()


def _term_weights(n_terms: int, held: list[tuple[bool, ...]]) -> list[float]:
    """Rarer among the retrieved passages, heavier: the topic words (宝马, 2021) are in every passage,
    the constraint that tells the answer from the noise (全球, 克利夫兰) is in few or none. `held`: the
    key terms each passage holds."""
    n = len(held)
    if not n:
        return [1.0] * n_terms
    df = [sum(col) for col in zip(*held)] if n_terms else []
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
    if shorter == longer or (len(shorter) >= 4 and (longer.startswith(shorter) or longer.endswith(shorter))):
        return True
    # inflections of one stem: "assembly" / "assembled", "released" / "releases"
    return len(shorter) >= 6 and longer.startswith(shorter[:-2]) and len(longer) - len(shorter) <= 2


def answer_candidates(sentence: str, kind: Kind, question: str, lang: Lang) -> set[str]:
    """Things of the asked-for kind that the sentence states and the question does not."""
    lang = language_of(sentence)  # an English document answering a Chinese question states English names
    if kind == "number" and lang == "en":
        found = {m.group(0).strip() for m in _EN_NUMBER.finditer(sentence)}
        found = {n for n in found if not _YEAR.fullmatch(n) and n.split()[-1].lower() not in _EN_NOT_UNIT}
    elif kind == "number":
        found = {m.group(0).strip() for m in _NUMBER.finditer(sentence)}
        found = {n for n in found if not _YEAR.fullmatch(n)}
    elif kind == "date":
        found = {m.group(0) for m in _DATE.finditer(sentence)}
    elif kind == "value":
        found = set().union(*(answer_candidates(sentence, k, question, lang) for k in ("number", "date", "name")))
        found |= {m.group(0) for m in _CODE.finditer(sentence) if m.start() > 0}
    elif lang == "zh":
        tags = _ZH_KIND_TAGS.get(kind, _ZH_PROPER_TAGS)
        found = {w for w, tag in _zh_names_joined(rjieba.tag(sentence)) if tag in tags and len(w) >= 2}
        if kind in ("other", "work", "name"):
            found |= {q for groups in _QUOTED.findall(sentence) for q in groups if q}
    else:
        # a capitalised sentence opening is grammar, not a name, unless the name runs on ("Tim Cook")
        found = {re.sub(r"^(?:The|A|An|Its|It|In|On|At) ", "", m.group(0)) for m in _EN_NAME.finditer(sentence)
                 if m.start() > 0 or " " in m.group(0)}
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
