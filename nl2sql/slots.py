"""Deterministic NL2SQL, step one: find the metadata conditions in a question.

Dates come from `dates.find_dates`; people, file names, tags and knowledge bases are recognised only by
matching the tenant's own distinct values (longest first), so nothing is guessed. What is left after
removing the conditions and filler words is the content query; if nothing is left the question asks
about documents themselves ("which files did I upload last month") and is answered from the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

import rjieba

from sieve.nl2sql.dates import combine, find_dates
from sieve.nl2sql.schema import MetadataValues

Span = tuple[int, int]


@dataclass(frozen=True)
class Slots:
    start: datetime | None = None  # created_at >= start
    end: datetime | None = None  # created_at < end
    owners: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()  # exact file names
    names: tuple[str, ...] = ()  # words the file name, title or a tag should contain ("叫周报的文件")
    tags: tuple[str, ...] = ()
    kb_names: tuple[str, ...] = ()
    metadata_question: bool = False  # the question is about the documents, not their content
    content_query: str = ""  # what is left to search in the text

    @property
    def has_conditions(self) -> bool:
        return any((self.start, self.end, self.owners, self.filenames, self.names, self.tags, self.kb_names))


# "the file called X", "标题包含X", 《X》: an explicit name, matched as a substring later.
_OPEN_Q = r"[“\"'「『《]?"
_CLOSE_Q = r"[”\"'」』》]?"
_NAME_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"(?:叫做?|名为|名叫|名字叫|标题为|标题是|题为|文件名为|文件名是|命名为)\s*" + _OPEN_Q
    + r"(?P<v>[^“”\"'「」『』《》，,。？?！!\s]{1,40}?)" + _CLOSE_Q + r"(?=的|文件|文档|$|[\s，,。？?！!])",
    r"(?:标题|文件名|名字|名称)(?:里|中)?(?:包含|含有|带有|有)\s*" + _OPEN_Q
    + r"(?P<v>[^“”\"'「」『』《》，,。？?！!\s]{1,40}?)" + _CLOSE_Q + r"(?=的|文件|文档|$|[\s，,。？?！!])",
    r"《(?P<v>[^《》]{1,80})》",
    r"(?<![A-Za-z])(?:named|called|titled|entitled)\s+(?:[\"“'](?P<v>[^\"”']{1,80})[\"”']|(?P<w>[\w.\-]{1,80}))",
    r"(?<![A-Za-z])(?:title|name|filename)\s+(?:contains|containing|includes|including|with)\s+"
    r"(?:[\"“'](?P<v>[^\"”']{1,80})[\"”']|(?P<w>[\w.\-]{1,80}))",
)]
# Tags are ordinary words, so a tag value narrows only when the question talks about tags.
_TAG_CUE = re.compile(r"标签|(?<![A-Za-z])tag|#", re.IGNORECASE)
_LISTING_CUE = re.compile(
    r"哪些|列出|列举|有什么|多少|几个|几份|几篇|清单|(?<![A-Za-z])(?:which|list|how\s+many|what\s+(?:files|documents|docs)|show\s+me)(?![A-Za-z])",
    re.IGNORECASE,
)
# Asking what documents say is a content question even when no content word is left.
_CONTENT_CUE = re.compile(
    r"讲|说了|内容|介绍|提到|总结一下|概括|(?<![A-Za-z])(?:say|says|said|explain|summari[sz]e|mention|mentions|contents?)(?![A-Za-z])",
    re.IGNORECASE,
)
# A date alone is a condition on the documents only when the question is about documents:
# "2023年的工作总结" is, "2022年世界杯冠军是谁" is not (that year belongs to the content).
_DOCUMENT_CUE = re.compile(
    r"文档|文件|资料|报告|总结|周报|月报|日报|纪要|记录|笔记|上传|写的|发布的|创建的|"
    r"(?<![A-Za-z])(?:documents?|docs?|files?|reports?|summar(?:y|ies)|notes|uploaded|wrote|written|created)(?![A-Za-z])",
    re.IGNORECASE,
)
_MIN_VALUE_CHARS = 2  # one-character owners or tags would match almost any Chinese sentence

# Words that carry no content once the conditions are taken out (tokens as rjieba cuts them).
_FILLER = frozenset("""
找 找一下 一下 帮 帮我 帮忙 我查 查 查找 查查 查询 搜 搜索 搜一下 看 看看 看一下 给 给我 请 麻烦 我 我的 我们 我们的
的 了 在 是 有 有没有 有哪些 哪些 哪个 什么 多少 几 几个 几份 几篇 个 份 篇 列出 列举 显示 所有 全部 一些 这些 那些
上传 上传了 写 写的 撰写 创建 创建的 发布 提交 作者 负责人 由 被 所 关于 有关 相关 方面 中 里 内 期间 之间 从 自 起
文件 文档 资料 文档吗 吗 呢 吧 和 与 及 以及 或 或者 叫 名为 为 标签 清单 一共 共 总共 知识库 库
讲 讲了 说 说了 内容 介绍 提到 总结一下 概括 主要
a an the of in on at by for from to with about regarding and or me my mine i we our you your please can could would
show list find get give search look up which what who whose how many much all any every some did do does is are was
were be been have has had that this these those there files file documents document docs doc uploaded upload written
wrote write created create authored owned submitted added related s tag tagged tags named called titled
knowledge base kb say says said explain summarize summarise mention mentions content contents
""".split())
_PUNCT = re.compile(r"^[\s\W_]+$")


def fill_slots(question: str, values: MetadataValues, now: datetime, *, match_kb_names: bool = True) -> Slots:
    """Find the conditions in `question`; `now` anchors relative dates ("上个月", "last year")."""
    taken: list[Span] = []
    names = _find_names(question, taken)
    date_matches = [m for m in find_dates(question, now) if _free(m.span, taken)]
    taken += [m.span for m in date_matches]
    date_range = combine(date_matches)

    candidates = [("owner", v) for v in values.owners] + [("filename", v) for v in values.filenames]
    if _TAG_CUE.search(question):
        candidates += [("tag", v) for v in values.tags]
    if match_kb_names:
        candidates += [("kb", v) for v in values.kb_names]
    found: dict[str, list[str]] = {"owner": [], "filename": [], "tag": [], "kb": []}
    for kind, value in sorted(candidates, key=lambda c: -len(c[1])):
        if len(value) < _MIN_VALUE_CHARS:
            continue
        spans = [s for s in _occurrences(question, value) if _free(s, taken)]
        if spans:
            taken += spans
            if value not in found[kind]:
                found[kind].append(value)

    if date_range and not (names or any(found.values()) or _DOCUMENT_CUE.search(question)):
        date_spans = {m.span for m in date_matches}
        taken = [span for span in taken if span not in date_spans]
        date_range = None
    content = _residual(question, taken)
    slots = Slots(
        start=date_range[0] if date_range else None,
        end=date_range[1] if date_range else None,
        owners=tuple(found["owner"]),
        filenames=tuple(found["filename"]),
        names=tuple(names),
        tags=tuple(found["tag"]),
        kb_names=tuple(found["kb"]),
    )
    asks_content = bool(content) or bool(_CONTENT_CUE.search(question))
    metadata_question = not asks_content and (slots.has_conditions or bool(_LISTING_CUE.search(question)))
    query = "" if metadata_question else (content if content and slots.has_conditions else question.strip())
    return replace(slots, metadata_question=metadata_question, content_query=query)


def _find_names(question: str, taken: list[Span]) -> list[str]:
    names: list[str] = []
    for pattern in _NAME_PATTERNS:
        for m in pattern.finditer(question):
            value = (m.groupdict().get("v") or m.groupdict().get("w") or "").strip()
            if value and _free(m.span(), taken):
                taken.append(m.span())
                if value not in names:
                    names.append(value)
    return names


def _occurrences(text: str, value: str) -> list[Span]:
    """Case-insensitive occurrences; a Latin-script value must be a whole word ("Ann" is not in "annual")."""
    escaped = re.escape(value)
    if re.match(r"\w", value[0], re.ASCII):
        escaped = r"(?<![A-Za-z0-9])" + escaped
    if re.match(r"\w", value[-1], re.ASCII):
        escaped += r"(?![A-Za-z0-9])"
    return [m.span() for m in re.finditer(escaped, text, re.IGNORECASE)]


def _free(span: Span, taken: list[Span]) -> bool:
    return all(span[1] <= s or span[0] >= e for s, e in taken)


def _residual(question: str, taken: list[Span]) -> str:
    """The question minus conditions and filler: adjacent kept words form a phrase, phrases are space-separated."""
    phrases: list[list[str]] = []
    cursor = 0
    for start, end in [*sorted(taken), (len(question), len(question))]:
        current: list[str] = []
        for token in rjieba.cut(question[cursor:start]):
            word = token.strip()
            if not word:
                continue  # spaces join the words of one phrase
            if _PUNCT.match(word) or word.lower() in _FILLER:
                if current:
                    phrases.append(current)
                current = []
            else:
                current.append(word)
        if current:
            phrases.append(current)
        cursor = max(cursor, end)
    return " ".join(_join(words) for words in phrases)


def _join(words: list[str]) -> str:
    """Chinese words glue together; Latin words keep a space between them."""
    text = words[0]
    for word in words[1:]:
        latin = text[-1].isascii() and text[-1].isalnum() and word[0].isascii() and word[0].isalnum()
        text += (" " if latin else "") + word
    return text
