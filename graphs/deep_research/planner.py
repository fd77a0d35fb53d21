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
from sieve.graphs.shared.text import split_sentences
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


# bridge phrases: (pattern naming the subject, the question that finds the bridge entity, its type); a
# subject starts at no Latin word's middle (Northwind Labs is not "orthwind Labs")
_ZH_BRIDGES: list[tuple[re.Pattern[str], str, str]] = [
    # "哪家公司", not "哪里": grading and quoting read "在哪里" as asking for a place, not the company
    (re.compile(r"(?<![A-Za-z0-9])(?P<x>[^，,。？?的]{1,24}?)(?:所在|工作|任职|就职)的?(?:公司|单位|企业)"),
     "{x}在哪家公司工作？", "organization"),
    (re.compile(r"(?<![A-Za-z0-9])(?P<x>[^，,。？?]{1,24}?)所在(?:的)?城市"), "{x}在哪个城市？", "place"),
]
# a name opens with a capital, or is written in Chinese (a hop's filled-in 远山网络)
_EN_NAME_START = r"(?:[A-Z]|[\u4e00-\u9fff])"
_EN_BRIDGES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(rf"the (?:company|employer|firm|organi[sz]ation) (?:that |which |where )?(?P<x>{_EN_NAME_START}[\w.\- ]*?)"
                r" works? (?:at|for)", re.I), "Which company does {x} work for?", "organization"),
    (re.compile(rf"(?P<x>{_EN_NAME_START}[\w.\-]*(?: [A-Z][\w.\-]*)*)'s (?:employer|company)"),
     "Which company does {x} work for?", "organization"),
    (re.compile(rf"the city (?:where|in which) (?P<x>{_EN_NAME_START}[\w.\- ]*?) is (?:headquartered|based|located)", re.I),
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
    # an English question with a Chinese name in it (a filled-in hop) may read as Chinese: the rules of
    # both languages are tried, the detected language's first (neither matches the other's wording)
    rules = [(_ZH_BRIDGES, "zh"), (_EN_BRIDGES, "en")]
    if detect(question) != "zh":
        rules.reverse()
    for pattern, asks, entity_type, lang in ((*rule, lang) for bridges, lang in rules for rule in bridges):
        if match := pattern.search(question):
            asked = match["x"].strip()
            if lang == "en" and asked.lower().startswith("the "):
                asked = asked[4:]
            template = question[: match.start()] + ENTITY + question[match.end():]
            # the subject is the name the answering passage must mention: 青禾科技, of 青禾科技的总部
            return Hop(asks.format(x=asked), template, entity_type, asked.split("的", 1)[0] if lang == "zh" else asked)
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
        parts.append(_as_question(part[0].upper() + part[1:] if lang == "en" else part, lang))
    return parts


# "比较A和B的总部所在地" names what it compares by a noun: each part is asked as the question it stands for,
# so grading and quoting know what kind of answer it wants (a place, a year, a count)
_ZH_ASKS = re.compile(r"[？?吗]|什么|哪|谁|多少|几|怎么|如何|为何")
_ZH_ATTRIBUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"的?(?:所在地|所在城市|所在地区|所在位置|地址|位置|地点)$"), "在哪里？"),
    (re.compile(r"的?(?:成立时间|成立年份|成立日期|创立时间|创办时间)$"), "成立于哪一年？"),
    (re.compile(r"的?(?:员工人数|员工数量|员工数|员工规模|人数)$"), "有多少员工？"),
]
_EN_ASKS = re.compile(r"^(?:what|which|who|whom|whose|where|when|why|how|is|are|was|were|do|does|did|can)\b", re.I)


def _as_question(part: str, lang: Lang) -> str:
    if lang == "en":
        part = part.rstrip(" .?")
        return f"{part}?" if _EN_ASKS.match(part) else f"What is {part[0].lower()}{part[1:]}?"
    if _ZH_ASKS.search(part):
        return part
    part = part.rstrip("。 ")
    for attribute, asks in _ZH_ATTRIBUTES:
        if attribute.search(part):
            return attribute.sub("", part) + asks
    return f"{part}是什么？"


# the Chinese rules tag no Latin names: in Chinese text a run of capitalised Latin words names something
# (李娜 works at Northwind Labs); single letters (B轮) and two-letter runs are too often not names
_LATIN_NAME = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Za-z0-9&.\-]*(?: [A-Z][A-Za-z0-9&.\-]*)*")


def mentions(text: str, lang: Lang | None = None) -> list[tuple[str, str]]:
    """(name, type) of the named things in `text`: the entity rules', and in Chinese its Latin names too."""
    found: list[tuple[str, str]] = list(find_entities(text, lang))
    if (lang or detect(text)) == "zh":
        known = {normalise_name(name) for name, _ in found}
        for name in dict.fromkeys(_LATIN_NAME.findall(text)):
            if len(name) >= 3 and normalise_name(name) not in known:
                found.append((name, "other"))  # untyped, like every English name
    return found


def _names(text: str, lang: Lang) -> list[str]:
    return [name for name, _ in mentions(text, lang)]


# a question that says it asks about each ("分别", "各自") or compares: its opening list is the things asked about
_ZH_EACH = re.compile(r"分别|各自|比较|对比|区别|不同|差异|一共|总共|合计")
_UNIT = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")
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
    # a Latin word counts as one unit: "Northwind Labs" is as long a name as 青禾科技 is
    if opening is None or len(items) < 2 or not all(2 <= len(_UNIT.findall(item)) <= 12 for item in items):
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


def bridge_entities(passages: list[Passage], question: str, entity_type: str, limit: int = 2, subject: str = "",
                    ) -> list[str]:
    """Names of `entity_type` the passages mention and the question does not, most mentioned first; with
    a `subject`, only names a passage ties to it (`tied_text`)."""
    asked = {normalise_name(name) for name, _ in mentions(question)}
    counts: Counter[str] = Counter()
    for passage in passages:
        text = tied_text(passage, subject) if subject else passage["text"]
        for name, kind in mentions(text):
            # English names come untyped ("other"): any of them may be the bridge
            if kind in (entity_type, "other") and normalise_name(name) not in asked and name not in question:
                counts[name] += max(1, text.count(name))
    return [name for name, _ in counts.most_common(limit)]


def tied_text(passage: Passage, subject: str) -> str:
    """What of the passage can tie `subject` to another entity: all of it when the passage is about the
    subject (its title, heading or opening sentence names it, so "She joined Northwind Labs" is Alice
    Chen's), else only its sentences naming the subject (David Wu's profile naming his employer 远山网络
    says nothing of where 远山网络 is)."""
    text = passage["text"]
    if about(passage, subject):
        return text
    return "\n".join(sentence for sentence in split_sentences(text) if subject in sentence)


def about(passage: Passage, subject: str) -> bool:
    """The passage is about `subject`: its document's title or its heading names it, or its opening
    sentence starts with it (张伟's profile opening "张伟毕业于…加入星河科技" is not about 星河科技)."""
    text = passage["text"]
    sentences = split_sentences(text) or [text]
    return subject in f"{passage.get('title', '')}\n{text.lstrip().split(chr(10), 1)[0]}" or sentences[0].startswith(subject)


def new_entities(passages: list[Passage], question: str, limit: int = 3) -> list[str]:
    """Named things the passages mention that the question does not: candidate next-step queries."""
    asked = {normalise_name(name) for name, _ in mentions(question)}
    counts: Counter[str] = Counter()
    for passage in passages:
        for name, _ in mentions(passage["text"]):
            if normalise_name(name) not in asked and name not in question:
                counts[name] += 1
    return [name for name, _ in counts.most_common(limit)]
