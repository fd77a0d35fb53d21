"""The extractive answer of deterministic mode: the best sentences of the kept passages, cited."""

from __future__ import annotations

from sieve.graphs.grading import answer_candidates, answer_kind
from sieve.graphs.state import Citation, Passage
from sieve.graphs.text import overlap, split_sentences, terms
from sieve.prompts.language import Lang

_PER_PASSAGE = 2


def extractive_answer(query: str, kept: list[Passage], lang: Lang, max_sentences: int) -> tuple[str, list[Citation]]:
    """Quote the sentences that share most terms with the query, at most two per passage.

    When the question asks for a kind of thing (a place for "where", a number for "how many") and
    some sentence states one, only such sentences are quoted, the best one of each passage: "where
    is its headquarters" is answered by the sentence naming the city, not by a neighbour that
    merely names the company.
    Ties (and sentences sharing nothing) go to the more relevant passage and the earlier sentence,
    so a passage kept by relevance alone still contributes its opening statement.
    """
    query_terms = terms(query, lang)
    kind = answer_kind(query, lang)
    candidates: list[tuple[bool, float, int, int, str]] = []
    for p_index, passage in enumerate(kept):
        for s_index, sentence in enumerate(split_sentences(passage["text"])):
            typed = kind != "other" and bool(answer_candidates(sentence, kind, query, lang))
            candidates.append((typed, overlap(query_terms, sentence, lang), p_index, s_index, sentence))
    candidates.sort(key=lambda c: (not c[0], -c[1], c[2], c[3]))

    chosen: list[tuple[int, int, str]] = []
    per_passage: dict[int, int] = {}
    best_typed, best = candidates[0][:2] if candidates else (False, 0.0)
    for typed, score, p_index, s_index, sentence in candidates:
        # a sentence sharing under two thirds of what the best one shares is off the question's point
        if len(chosen) == max_sentences or (chosen and (score < best * 2 / 3 or score == 0 or typed < best_typed)):
            break
        # a question asking for one thing gets one sentence per source: the one stating it
        if per_passage.get(p_index, 0) < (1 if best_typed else _PER_PASSAGE):
            per_passage[p_index] = per_passage.get(p_index, 0) + 1
            chosen.append((p_index, s_index, sentence))

    # number sources by first use, then read each source's sentences in document order
    numbers: dict[int, int] = {}
    for p_index, _, _ in chosen:
        numbers.setdefault(p_index, len(numbers) + 1)
    chosen.sort(key=lambda c: (numbers[c[0]], c[1]))
    separator = "" if lang == "zh" else " "
    answer = separator.join(f"{sentence}{separator}[{numbers[p]}]" for p, _, sentence in chosen)
    citations = [
        cite(kept[p_index], separator.join(s for p, _, s in chosen if p == p_index))
        for p_index in sorted(numbers, key=numbers.__getitem__)
    ]
    return answer, citations


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
