"""Language-aware text helpers of deterministic mode: sentences, content terms, keyword queries."""

from __future__ import annotations

import re

from sieve.prompts.language import Lang, detect

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=[.!?])\s+(?=[A-Z0-9\"'(\u3400-\u9fff])|\n+")
_ABBREVIATION = re.compile(r"(?:\b(?:Inc|Ltd|Corp|Co|Mr|Mrs|Ms|Dr|St|vs|No|U\.S|e\.g|i\.e)|\b[A-Z])\.$")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
# function characters: a bigram holding one carries no topic ("的总", "哪里")
ZH_FUNCTION_CHARS = set("的了是在和与或及吗呢吧啊么什哪谁几怎样为这那个些其它他她之于也就都而把被从对向请问吧呀")
ZH_STOP_TOKENS = {
    "什么", "时候", "哪里", "哪儿", "哪个", "哪些", "哪一年", "怎么", "怎么样", "如何", "为什么", "多少", "是不是",
    "请问", "一下", "可以", "能否", "是否", "的", "了", "是", "在", "吗", "呢", "吧", "啊", "和", "与",
    "做", "有", "告诉", "我", "你", "介绍",
}
EN_STOPWORDS = {
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "do", "does", "did", "what", "which",
    "who", "whom", "whose", "where", "when", "why", "how", "of", "in", "on", "at", "to", "for", "by",
    "with", "about", "from", "and", "or", "it", "its", "this", "that", "these", "those", "me", "tell",
    "please", "can", "could", "you", "i", "my", "your", "there", "any", "much", "many", "s",
}


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage, headings dropped (a title is not a quotable statement)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text)]
    body = "\n".join(p for p in paragraphs if p and not _is_heading(p)) or text.strip()
    # passages are often hard-wrapped mid-sentence: rejoin lines, then cut on sentence ends
    joined = re.sub(r"(?<=[\u3400-\u9fff，、])\s*\n\s*(?=[\u3400-\u9fff])", "", body)
    joined = re.sub(r"(?<![。！？!?；;.])\s*\n\s*(?=\S)", " ", joined)
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(joined):
        piece = piece.strip() if piece else ""
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}".strip()  # "Apple Inc." does not end a sentence
        elif piece:
            sentences.append(piece)
    return [s for s in sentences if len(s) >= 4]


def _is_heading(paragraph: str) -> bool:
    """A markdown heading, or a lone short line without closing punctuation ("Marathon running")."""
    if paragraph.startswith("#"):
        return True
    return "\n" not in paragraph and len(paragraph) <= 60 and not re.search(r"[。！？!?.;；:：]$", paragraph)


def terms(text: str, lang: Lang | None = None) -> set[str]:
    """Content terms for overlap scoring: CJK bigrams without function characters, and words."""
    lang = lang or detect(text)
    words = (w.lower() for w in _WORD.findall(text))
    found = {singular(w) for w in words if w not in EN_STOPWORDS}
    if lang == "zh":
        for run in _CJK_RUN.findall(text):
            found.update(
                run[i : i + 2]
                for i in range(len(run) - 1)
                if not (ZH_FUNCTION_CHARS & set(run[i : i + 2]))
            )
            if len(run) == 1 and run not in ZH_FUNCTION_CHARS:
                found.add(run)
    return found


def overlap(query_terms: set[str], text: str, lang: Lang) -> float:
    """Share of the query's terms the text contains (0..1)."""
    if not query_terms:
        return 0.0
    return len(query_terms & terms(text, lang)) / len(query_terms)


def keywords(query: str, lang: Lang) -> str:
    """The query without question words and particles: a looser query for the corrective retry."""
    if lang == "zh":
        import rjieba

        kept = [t for t in rjieba.cut(query) if t.strip() and t not in ZH_STOP_TOKENS and not _is_punct(t)]
    else:
        kept = [w for w in _WORD.findall(query) if w.lower() not in EN_STOPWORDS]
    return " ".join(kept) or query


def singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _is_punct(token: str) -> bool:
    return not any(ch.isalnum() for ch in token)
