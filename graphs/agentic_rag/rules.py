"""Routing rules of deterministic mode: small talk, and explicit cues that a question needs the web."""

from __future__ import annotations

import re
from typing import Literal

SmallTalk = Literal["greeting", "thanks", "goodbye", "identity"]

_PHRASES: dict[SmallTalk, list[str]] = {
    "greeting": [
        "你好吗", "你好", "您好", "大家好", "嗨", "哈喽", "哈啰", "早上好", "早安", "上午好", "中午好", "下午好",
        "晚上好", "在吗", "在不在", "最近怎么样", "最近好吗",
        "good morning", "good afternoon", "good evening", "how are you doing", "how are you", "how's it going",
        "what's up", "hello", "hey", "hi", "greetings",
    ],
    "thanks": ["非常感谢", "谢谢你", "谢谢", "多谢", "感谢", "谢啦", "辛苦了",
               "thank you very much", "thank you", "thanks a lot", "thanks", "thx", "cheers"],
    "goodbye": ["再见", "拜拜", "回头见", "晚安", "goodbye", "good night", "see you later", "see you", "bye"],
    "identity": [
        "你是谁", "你叫什么", "你能做什么", "你会什么", "介绍一下你自己", "介绍一下自己",
        "who are you", "what are you", "what can you do", "what is your name", "introduce yourself",
    ],
}
# what may surround a small-talk phrase without making it a real question
_FILLER = re.compile(r"[\s,，.。!！?？~～…、:：;；'\"]+|\b(?:there|sieve|bot|so|much|again|very)\b"
                     r"|[啊呀呢哦哈嘛吧啦吖哇呐]|sieve", re.IGNORECASE)

_WEB_CUES = re.compile(
    r"今天.{0,6}新闻|今日新闻|新闻头条|最新|最近.{0,4}(?:新闻|消息|动态)|实时|天气|气温|股价|汇率|比分|热搜|"
    r"上网|联网|网上搜|搜一下网|"
    r"\blatest\b|\bnews today\b|today'?s news|\bbreaking news\b|\bweather\b|\bforecast\b|\bstock price\b|"
    r"\bexchange rate\b|\blive score|\bright now\b|\bsearch the web\b|\bon the web\b|\bgoogle it\b",
    re.IGNORECASE,
)


_PATTERNS: dict[SmallTalk, re.Pattern[str]] = {
    kind: re.compile("|".join(re.escape(p) if not p.isascii() else rf"\b{re.escape(p)}\b" for p in phrases))
    for kind, phrases in _PHRASES.items()
}


def small_talk(text: str) -> SmallTalk | None:
    """The kind of small talk when the message is nothing but small talk ("你好！", "thanks a lot")."""
    rest = text.lower()
    kinds: list[SmallTalk] = []
    for kind, pattern in _PATTERNS.items():
        rest, found = pattern.subn(" ", rest)
        if found:
            kinds.append(kind)
    if not kinds or _FILLER.sub("", rest):
        return None
    # "你好，你是谁" is about identity; "thanks, bye" is a goodbye
    for kind in ("identity", "goodbye", "thanks", "greeting"):
        if kind in kinds:
            return kind
    return None


def needs_web(text: str) -> bool:
    return bool(_WEB_CUES.search(text))
