"""Deterministic follow-up rewriting: resolve pronouns and ellipsis against the previous turn.

"它的总部在哪里" after "苹果公司是做什么的" becomes "苹果公司的总部在哪里"; "那总部呢" becomes
"苹果公司的总部"; "那华为呢" swaps the entity in the previous query. English likewise: "Where is its
headquarters?", "what about its revenue", "what about Microsoft?". The entity is the salient noun
phrase of the previous query, preferring a proper noun that the previous answer also mentions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import rjieba

from sieve.prompts.language import detect

# rjieba POS tags of proper nouns (person, place, organisation, other, transliterated, foreign word)
_ZH_PROPER = {"nr", "ns", "nt", "nz", "nrt", "nrfg", "eng"}
_ZH_NOUN = _ZH_PROPER | {"n", "vn", "an", "ng"}
_ZH_PRONOUNS = {"它", "它们", "他", "他们", "她", "她们", "其", "该", "此"}
_ZH_DEMONSTRATIVES = {"这家", "那家", "这个", "那个", "这", "那", "该", "此"}
_ZH_HEADS = {"公司", "企业", "机构", "集团", "品牌", "产品", "人", "国家", "城市", "地方", "组织", "东西"}
_ZH_ELLIPSIS = re.compile(r"^(?:那么?|那么说|还有)?\s*(?P<rest>.+?)\s*(?:呢|怎么样|如何)\s*[？?。！!]*$")

_EN_PRONOUN = re.compile(
    r"\b(?:(?P<det>this|that|the) (?P<head>company|firm|organi[sz]ation|person|product|country|city)"
    r"|(?P<poss>its|their|his|her)|(?P<subj>it|they|them|him|she|he))\b",
    re.IGNORECASE,
)
_EN_ELLIPSIS = re.compile(r"^\s*(?:(?:what|how)\s+about|and)\s+(?P<rest>.+?)\s*[?.!]*\s*$", re.IGNORECASE)
_EN_CAPITALISED = re.compile(r"\b[A-Z][\w&.\-]*(?:\s+(?:of\s+|&\s+)?[A-Z][\w&.\-]*)*")
_EN_NOT_ENTITIES = {
    "What", "Where", "When", "Who", "Why", "How", "Which", "Is", "Are", "Was", "Were", "Does", "Do", "Did",
    "Can", "Could", "Tell", "Please", "The", "A", "An", "I", "And", "In", "On", "It", "Its", "This", "That",
}


@dataclass(frozen=True)
class Rewrite:
    query: str
    entity: str  # the salient entity after this turn (the new topic, or the one carried on)
    changed: bool


def is_followup(question: str) -> bool:
    """Does the question lean on the previous turn (a pronoun or an elliptic "what about ...")?"""
    if detect(question) == "zh":
        if _ZH_ELLIPSIS.match(question) and len(question) <= 16:
            return True
        tokens = [w for w, _ in rjieba.tag(question)]
        return any(t in _ZH_PRONOUNS or t in {"这家", "那家"} for t in tokens)
    return bool(_EN_ELLIPSIS.match(question) or _EN_PRONOUN.search(question))


def salient_entity(previous_query: str, previous_answer: str = "") -> str:
    """What a turn was about: a proper noun the answer shares, else the first proper noun, else the
    longest noun phrase the answer shares, else the first noun phrase."""
    candidates = _zh_noun_phrases(previous_query) if detect(previous_query) == "zh" else _en_entities(previous_query)
    proper = [c for c, is_proper in candidates if is_proper]
    shared = sorted((c for c, _ in candidates if previous_answer and c in previous_answer), key=len, reverse=True)
    for pool in ([c for c in proper if c in shared], proper, shared, [c for c, _ in candidates]):
        if pool:
            return pool[0]
    return ""


def rewrite_followup(question: str, previous_question: str, previous_answer: str = "", topic: str = "") -> Rewrite:
    """Resolve `question` against the previous turn; unchanged when it stands on its own.

    `topic` is the entity carried from earlier turns (it survives small talk in between); without it
    the entity comes from the previous question and answer.
    """
    question = question.strip()
    entity = topic or salient_entity(previous_question, previous_answer)
    own = _proper_entity(question)
    if not entity or not is_followup(question) or entity in question:
        return Rewrite(question, own or entity, False)
    if detect(question) == "zh":
        rewritten = _rewrite_zh(question, entity, previous_question)
    else:
        rewritten = _rewrite_en(question, entity, previous_question)
    return Rewrite(rewritten[0], rewritten[1], rewritten[0] != question)


def _proper_entity(text: str) -> str:
    candidates = _zh_noun_phrases(text) if detect(text) == "zh" else _en_entities(text)
    return next((c for c, is_proper in candidates if is_proper), "")


def _rewrite_zh(question: str, entity: str, previous_question: str) -> tuple[str, str]:
    if ellipsis := _ZH_ELLIPSIS.match(question):
        rest = ellipsis.group("rest")
        new_entity = _proper_entity(rest)
        if new_entity and len(new_entity) >= len(rest) - 1:
            # "那华为呢": the previous question, asked about another entity
            return _swap(previous_question, entity, new_entity, _substitute_zh), new_entity
        rest = _substitute_zh(rest, entity)
        return (rest if entity in rest else f"{entity}的{rest}"), entity
    return _substitute_zh(question, entity), entity


def _rewrite_en(question: str, entity: str, previous_question: str) -> tuple[str, str]:
    if ellipsis := _EN_ELLIPSIS.match(question):
        rest = ellipsis.group("rest").strip()
        new_entity = _proper_entity(rest)
        if new_entity and new_entity == rest:
            # "what about Microsoft?": the previous question, asked about another entity
            return _swap(previous_question, entity, new_entity, _substitute_en), new_entity
        rest = _substitute_en(rest, entity)
        return (rest if entity in rest else f"{rest} of {entity}"), entity
    return _substitute_en(question, entity), entity


def _swap(previous_question: str, old: str, new: str, substitute: Callable[[str, str], str]) -> str:
    swapped = substitute(previous_question, new)  # the previous question was itself a follow-up
    if swapped == previous_question:
        swapped = previous_question.replace(old, new)
    return swapped if swapped != previous_question else new


def _substitute_zh(text: str, entity: str) -> str:
    tokens = [w for w, _ in rjieba.tag(text)]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token, following = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in _ZH_DEMONSTRATIVES and following in _ZH_HEADS:
            out.append(entity)  # 这家公司 / 该公司
            i += 2
            continue
        if token in {"这家", "那家"}:
            out.append(entity)
        elif token in {"其", "该", "此"} and following not in {"的"}:
            out.append(f"{entity}的")  # 其创始人 -> 苹果公司的创始人
        elif token in _ZH_PRONOUNS:
            out.append(entity)
        else:
            out.append(token)
        i += 1
    return "".join(out)


def _substitute_en(text: str, entity: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("poss"):
            return f"{entity}'s"
        return entity

    return _EN_PRONOUN.sub(replace, text)


def _zh_noun_phrases(text: str) -> list[tuple[str, bool]]:
    """Runs of adjacent noun tokens ("华为" + "技术" would merge), each flagged proper or not."""
    phrases: list[tuple[str, bool]] = []
    run: list[str] = []
    proper = False
    for word, tag in [*rjieba.tag(text), ("", "x")]:
        if tag in _ZH_NOUN and word not in _ZH_PRONOUNS:
            run.append(word)
            proper = proper or tag in _ZH_PROPER or (len(word) >= 4 and tag == "n")
            continue
        if run:
            phrase = "".join(run)
            if len(phrase) >= 2:
                phrases.append((phrase, proper))
        run, proper = [], False
    return phrases


def _en_entities(text: str) -> list[tuple[str, bool]]:
    found: list[tuple[str, bool]] = []
    for match in _EN_CAPITALISED.finditer(text):
        words = match.group(0).split()
        while words and words[0] in _EN_NOT_ENTITIES:
            words = words[1:]
        phrase = " ".join(words).rstrip(".?!,")
        if phrase and phrase not in _EN_NOT_ENTITIES:
            found.append((phrase, True))
    return found
