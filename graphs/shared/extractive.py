"""The extractive answer of deterministic mode: the sentences of the kept passages that state what
was asked, each cited to the document that states it."""

from __future__ import annotations

import re
from typing import NamedTuple

from sieve.graphs.shared.grading import (
    Reading,
    answer_kind,
    gather_evidence,
    key_terms,
    language_of,
    subject_terms,
)
from sieve.graphs.shared.state import Citation, Passage
from sieve.graphs.shared.text import overlap, split_sentences, terms
from sieve.prompts.language import Lang

_PER_PASSAGE = 2
# a sentence opening with one of these needs the sentence that names its subject to be understood
_PRONOUN = re.compile(r"^(?:It|Its|They|Their|He|She|His|Her|This|These)\b|^(?:它|其|该|他|她|这)")


class _Candidate(NamedTuple):
    rank: tuple[float, ...]  # smaller is better (flags, then the negated score, then positions)
    score: float  # how much of what is asked it covers: the cut-off for further sentences
    passage: int
    sentence: int  # its index among the passage's sentences (`index` is a tuple method)
    text: str


def extractive_answer(query: str, kept: list[Passage], lang: Lang, max_sentences: int,
                      readings: list[Reading] | None = None) -> tuple[str, list[Citation]]:
    """Quote the sentences that state what the question asks, best first, cited.

    A sentence states it when it says something of the asked-for kind (a place for "where", a person
    for "who"), names the question's subjects (its document's title and opening sentence count) and
    repeats most of what is asked about them ("sells" for "sell", "chief executive officer" for
    "CEO"). A question asking for one thing is answered by the best such sentence of each source
    that says something else; an open one ("what does X do") by the best few sentences, at most two
    per source. A sentence repeating a chosen one is dropped, and where two say as much, the one in
    the question's language wins. A chosen sentence that says "it" comes with the sentence naming
    its subject, unless the question names the cited document's subject itself. `readings`: grading's
    `read_passages` of `kept`, where it has them.
    """
    if not kept:
        return "", []
    kind = answer_kind(query, lang)
    evidence = gather_evidence(query, kept, lang, readings)
    subjects = [t.lower() for t in subject_terms(query, key_terms(query, lang), lang)]
    candidates = []
    for p_index, (passage, e) in enumerate(zip(kept, evidence)):
        other_language = language_of(passage["text"]) != lang
        for s_index, s in enumerate(e.sentences):
            states = kind == "other" or bool(s.candidates)
            score = s.predicate * 2 + s.coverage
            # "what does X do" is answered by a sentence about X, not by one about its subsidiary
            about = kind != "other" or _about(s.text, subjects, s_index == 0 and other_language)
            rank = (not states, not s.anchored, not about, -round(score, 3), other_language, p_index, s_index)
            candidates.append(_Candidate(rank, score if states and s.anchored else 0.0, p_index, s_index, s.text))
    candidates.sort()

    best = candidates[0]
    chosen: list[_Candidate] = []
    per_passage: dict[int, int] = {}
    stated: set[str] = set()  # answers already quoted (a second source stating the same adds nothing)
    for c in candidates:
        if len(chosen) == max_sentences or (chosen and (c.rank[:3] != best.rank[:3] or c.score < best.score * 2 / 3)):
            break
        if per_passage.get(c.passage, 0) >= (1 if kind != "other" else _PER_PASSAGE) or _repeats(c.text, chosen):
            continue
        found = evidence[c.passage].sentences[c.sentence].candidates
        if chosen and kind != "other" and found and found <= stated:
            continue
        # another language's source naming the same thing cannot be told apart from a repeat: the
        # question's language answers alone once it has
        if chosen and kind != "other" and c.rank[4] and not any(o.rank[4] for o in chosen):
            continue
        stated |= found
        per_passage[c.passage] = per_passage.get(c.passage, 0) + 1
        chosen.append(c)
    chosen += _subjects(chosen, kept, subjects)

    # number sources by first use, then read each source's sentences in document order
    numbers: dict[int, int] = {}
    for c in chosen:
        numbers.setdefault(c.passage, len(numbers) + 1)
    chosen.sort(key=lambda c: (numbers[c.passage], c.sentence))
    separator = "" if lang == "zh" else " "
    parts = []
    for i, c in enumerate(chosen):
        last_of_source = i + 1 == len(chosen) or chosen[i + 1].passage != c.passage
        space = " " if c.text[-1:].isascii() else ""  # an English sentence in a Chinese answer
        parts.append(f"{c.text}{space}[{numbers[c.passage]}]" if last_of_source else c.text)
    answer = _joined(parts, separator)
    citations = [
        cite(kept[p_index], _verbatim(kept[p_index]["text"], [c.text for c in chosen if c.passage == p_index],
                                      separator))
        for p_index in sorted(numbers, key=numbers.__getitem__)
    ]
    return answer, citations


def _joined(parts: list[str], separator: str) -> str:
    """Chinese sentences run on without a space; an English one in a Chinese answer is set apart by one."""
    answer = parts[0]
    for part in parts[1:]:
        english = part[:1].isascii() or (answer[-1:].isascii() and answer[-1:] != "]")
        answer += (separator or (" " if english else "")) + part
    return answer


def _verbatim(text: str, sentences: list[str], separator: str) -> str:
    """The stretch of the passage from the first quoted sentence to the end of the last, as written
    there (line breaks included), so a client can find the quote in the chunk it links to."""
    first = _find(text, sentences[0], 0)
    last = _find(text, sentences[-1], first.start()) if first else None
    if not first or not last:  # sentence splitting changed more than whitespace: the sentences as read
        return separator.join(sentences)
    return text[first.start() : last.end()]


def _find(text: str, sentence: str, start: int) -> re.Match[str] | None:
    """The sentence in the text, whatever whitespace (a wrapped line) the text has between its words."""
    return re.compile(r"\s*".join(re.escape(part) for part in sentence.split())).search(text, start)


def _about(sentence: str, subjects: list[str], opening: bool) -> bool:
    """The sentence is about the question's subject: it opens with it, or with a pronoun for it."""
    head = sentence.lstrip().lower()
    return opening or bool(_PRONOUN.match(sentence)) or any(head.startswith(t) for t in subjects) or not subjects


def _subjects(chosen: list[_Candidate], kept: list[Passage], subjects: list[str]) -> list[_Candidate]:
    """The opening sentence of each passage whose chosen sentence says "it" without naming it, unless
    the question names what "it" is: its subjects are the cited document's title ("What does Apple
    Inc. sell?" answered from "Apple Inc." by "It designs and sells ...")."""
    added: list[_Candidate] = []
    for c in chosen:
        heading = _heading(kept[c.passage]).lower()
        named = bool(subjects) and all(t in heading for t in subjects)
        if c.sentence > 0 and _PRONOUN.match(c.text) and not named and not any(
                o.passage == c.passage and o.sentence < c.sentence for o in chosen + added):
            opening = split_sentences(kept[c.passage]["text"])[0]
            added.append(_Candidate((), 0.0, c.passage, 0, opening))
    return added


def _heading(passage: Passage) -> str:
    """The document's title, or the passage's opening markdown heading."""
    if title := passage.get("title"):
        return title
    first = passage["text"].lstrip().split("\n", 1)[0]
    return first.lstrip("#").strip() if first.startswith("#") else ""


def _repeats(text: str, chosen: list[_Candidate]) -> bool:
    """Near-duplicate of a chosen sentence (the same statement syndicated into two documents)."""
    grams = {text[i : i + 2] for i in range(len(text) - 1)}
    for c in chosen:
        other = {c.text[i : i + 2] for i in range(len(c.text) - 1)}
        if grams and other and len(grams & other) >= 0.7 * min(len(grams), len(other)):
            return True
    return False


def best_quote(query: str, passage: Passage, lang: Lang) -> str:
    """The passage's sentence that shares most terms with the query (its opening one on a tie)."""
    sentences = split_sentences(passage["text"]) or [passage["text"][:200]]
    query_terms = terms(query, lang)
    return max(sentences, key=lambda s: (overlap(query_terms, s, lang), -sentences.index(s)))


def cite(passage: Passage, quote: str) -> Citation:
    citation = Citation(doc_id=passage["doc_id"], filename=passage["filename"], chunk_id=passage["chunk_id"], quote=quote)
    if location := passage.get("location"):
        citation["page"], citation["regions"] = location["page"], location["regions"]
    return citation
