"""Planning: a question split into sub-questions, and entity hops resolved as bridge entities are found.

Without an LLM the split is by rule: an enumeration or a conjunction of named things ("星河科技和云帆网络
分别…", "compare X and Y", "X and Y respectively") becomes one sub-question per thing; a bridge phrase
("张伟所在公司", "the company that Alice Chen works for") becomes a hop: first ask for the bridge entity,
then the rest of the question about whatever entity the kept passages name (`Hop.template`). With an
LLM the split comes from a structured decision, and each of its sub-questions gets the same hop rules.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sieve.graphs.shared.state import Passage
from sieve.ingest.extraction import find_entities
from sieve.prompts.language import Lang, detect
from sieve.stores.graph import normalise_name

ENTITY = "{entity}"
MAX_PARTS = 5


@dataclass(frozen=True)
class Hop:
    """The bridge of an entity hop: `question` finds the entity, `template` asks about it."""

    question: str  # e.g. 张伟在哪里工作？
    template: str  # e.g. {entity}的总部位于哪个城市？
    entity_type: str  # the kind of entity the bridge names (organization, place)
    subject: str  # what the bridge question is about (张伟)


# bridge phrases: (pattern naming the subject, the question that finds the bridge entity, its type)
_ZH_BRIDGES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"(?P<x>[^，,。？?的]{1,12}?)(?:所在|工作|任职|就职)的?(?:公司|单位|企业)"), "{x}在哪里工作？", "organization"),
    (re.compile(r"(?P<x>[^，,。？?]{1,16}?)所在(?:的)?城市"), "{x}在哪个城市？", "place"),
]
_EN_BRIDGES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"the (?:company|employer|firm|organi[sz]ation) (?:that |which |where )?(?P<x>[A-Z][\w.\- ]*?) works? (?:at|for)",
                re.I), "Which company does {x} work for?", "organization"),
    (re.compile(r"(?P<x>[A-Z][\w.\-]*(?: [A-Z][\w.\-]*)*)'s (?:employer|company)"), "Which company does {x} work for?",
     "organization"),
    (re.compile(r"the city (?:where|in which) (?P<x>[A-Z][\w.\- ]*?) is (?:headquartered|based|located)", re.I),
     "Where is {x} headquartered?", "place"),
]

# questions that ask for an entity (where someone works): a bridge on their own, whose kept passage may
# name the entity without answering in a quotable way (张伟 → 星河科技)
_ENTITY_QUESTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<x>[^，,。？?]{1,12}?)(?:在哪里|在哪家公司|在什么公司|在哪个公司|在哪儿)"
                r"(?:工作|任职|就职|上班)"), "organization"),
    (re.compile(r"^(?:which company|where|who) does (?P<x>.+?) work(?: for| at)?\W*$", re.I), "organization"),
]

_ZH_SEP = "和与及跟、"
_EN_LIST = re.compile(r",\s*(?:and |or )?|\s+(?:and|or|vs\.?|versus)\s+", re.I)
_ZH_LEAD = re.compile(r"^(?:请)?(?:比较|对比)(?:一下)?")
_EN_LEAD = re.compile(r"^(?:please )?(?:compare|contrast)\s+", re.I)
# words that ask about the whole list: gone from each part's question
_ZH_RESPECTIVELY = re.compile(r"各自|分别|一共|总共|合计")
_EN_RESPECTIVELY = re.compile(r",?\s*\b(?:respectively|each|in total|altogether|combined)\b", re.I)


def hop_of(question: str) -> Hop | None:
    """The first bridge phrase in `question`, as a hop; None when it names its entities outright."""
    lang = detect(question)
    for pattern, asks, entity_type in _ZH_BRIDGES if lang == "zh" else _EN_BRIDGES:
        if match := pattern.search(question):
            subject = match["x"].strip()
            if lang == "en" and subject.lower().startswith("the "):
                subject = subject[4:]
            template = question[: match.start()] + ENTITY + question[match.end():]
            return Hop(asks.format(x=subject), template, entity_type, subject)
    return None


def asks_for_entity(question: str) -> tuple[str, str] | None:
    """(subject, entity type) of a question asking which company someone works for; None otherwise."""
    for pattern, entity_type in _ENTITY_QUESTIONS:
        if match := pattern.search(question.strip()):
            return match["x"].strip(), entity_type
    return None


def split_parts(question: str) -> list[str]:
    """One question per named thing of an enumeration or comparison; `[question]` when there is none."""
    lang = detect(question)
    text = question.strip()
    text = (_ZH_LEAD if lang == "zh" else _EN_LEAD).sub("", text)
    respectively = (_ZH_RESPECTIVELY if lang == "zh" else _EN_RESPECTIVELY)
    listed = _zh_listing(text, bool(_ZH_EACH.search(question))) if lang == "zh" else _en_listing(text)
    if listed is None:
        return [question]
    start, end, items = listed
    if len(items) < 2:
        return [question]
    parts = []
    for item in items[:MAX_PARTS]:
        part = respectively.sub("", text[:start] + item + text[end:]).strip()
        parts.append(part[0].upper() + part[1:] if lang == "en" else part)
    return parts


def _names(text: str, lang: Lang) -> list[str]:
    return [name for name, _ in find_entities(text, lang)]


# a question that says it asks about each ("分别", "各自") or compares: its opening list is the things asked about
_ZH_EACH = re.compile(r"分别|各自|比较|对比|区别|不同|差异|一共|总共|合计")
_ZH_OPENING_LIST = re.compile(r"^[^，,。？?的]{2,40}?(?=的|分别|各自|一共|总共|合计)")


def _zh_listing(text: str, each: bool) -> tuple[int, int, list[str]] | None:
    """The span of "A和B(、C)" where every item is a name the entity rules find, and its items; for a
    question that asks about each, the list it opens with, whatever the names (火星矿业集团 is no known one)."""
    names = sorted(set(_names(text, "zh")), key=len, reverse=True)
    if len(names) >= 2:
        alternatives = "|".join(map(re.escape, names))
        if match := re.search(rf"(?:{alternatives})(?:[{_ZH_SEP}](?:{alternatives}))+", text):
            return match.start(), match.end(), [item for item in re.split(rf"[{_ZH_SEP}]", match.group()) if item]
    # the rules tag 青禾数据 as a person named 青禾: a question asking about each names its things first
    opening = _ZH_OPENING_LIST.match(text) if each else None
    items = re.split(rf"[{_ZH_SEP}]", opening.group()) if opening else []
    if opening is None or len(items) < 2 or not all(2 <= len(item) <= 12 for item in items):
        return None
    return 0, opening.end(), items


def _en_listing(text: str) -> tuple[int, int, list[str]] | None:
    # the English rules read "Northwind Labs and Bluepeak Systems" as one run of capitalised words
    found = {item.strip() for name in _names(text, "en") for item in _EN_LIST.split(name) if item.strip()}
    names = sorted(found, key=len, reverse=True)
    if len(names) < 2:
        return None
    alternatives = "|".join(map(re.escape, names))
    listing = re.compile(rf"(?:{alternatives})(?:(?:{_EN_LIST.pattern})(?:{alternatives}))+", re.I)
    match = listing.search(text)
    if match is None:
        return None
    items = [item.strip() for item in _EN_LIST.split(match.group()) if item and item.strip()]
    return match.start(), match.end(), items


def bridge_entities(passages: list[Passage], question: str, entity_type: str, limit: int = 2) -> list[str]:
    """Names of `entity_type` the passages mention and the question does not, most mentioned first."""
    asked = {normalise_name(name) for name, _ in find_entities(question)}
    counts: Counter[str] = Counter()
    for passage in passages:
        text = passage["text"]
        for name, kind in find_entities(text):
            # English names come untyped ("other"): any of them may be the bridge
            if kind in (entity_type, "other") and normalise_name(name) not in asked and name not in question:
                counts[name] += max(1, text.count(name))
    return [name for name, _ in counts.most_common(limit)]


def new_entities(passages: list[Passage], question: str, limit: int = 3) -> list[str]:
    """Named things the passages mention that the question does not: candidate next-step queries."""
    asked = {normalise_name(name) for name, _ in find_entities(question)}
    counts: Counter[str] = Counter()
    for passage in passages:
        for name, _ in find_entities(passage["text"]):
            if normalise_name(name) not in asked and name not in question:
                counts[name] += 1
    return [name for name, _ in counts.most_common(limit)]
