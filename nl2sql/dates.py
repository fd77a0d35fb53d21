"""Date expressions in Chinese and English, resolved against `now` into half-open [start, end) ranges.

Each pattern yields the calendar unit it names (a day, month, quarter, half, year, or a span of them);
words around it ("since", "before", "以来", "之前") then open one side of the range. Boundaries are
wall-clock times in `now`'s time zone (UTC when `now` is naive).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

Range = tuple[datetime | None, datetime | None]


@dataclass(frozen=True)
class DateMatch:
    start: datetime | None  # inclusive; None = unbounded
    end: datetime | None  # exclusive; None = unbounded
    span: tuple[int, int]  # where in the text the expression (with its modifiers) was found


def find_dates(text: str, now: datetime) -> list[DateMatch]:
    """All date expressions in `text`, left to right, longest match first where they overlap."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    candidates: list[tuple[int, int, Range]] = []
    for pattern, resolve in _PATTERNS:
        for m in pattern.finditer(text):
            resolved = resolve(m, now)
            if resolved is not None:
                candidates.append((m.start(), m.end(), resolved))
    chosen: list[tuple[int, int, Range]] = []
    for start, end, rng in sorted(candidates, key=lambda c: (c[0] - c[1], c[0])):
        if all(end <= s or start >= e for s, e, _ in chosen):
            chosen.append((start, end, rng))
    chosen.sort(key=lambda c: c[0])
    return [_with_modifiers(text, start, end, rng) for start, end, rng in _merge_ranges(text, chosen)]


def combine(matches: list[DateMatch]) -> Range | None:
    """One range covering every match: "2022年和2024年" becomes 2022 through 2024 (wider, never narrower)."""
    if not matches:
        return None
    starts = [m.start for m in matches]
    ends = [m.end for m in matches]
    return (None if None in starts else min(s for s in starts if s is not None),
            None if None in ends else max(e for e in ends if e is not None))


# ---- calendar helpers ---------------------------------------------------------------------------------

def _month_start(year: int, month: int, tz: tzinfo | None) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=tz)


def _months(year: int, first: int, count: int, tz: tzinfo | None) -> Range:
    return _month_start(year, first, tz), _month_start(year, first + count, tz)


def _day(year: int, month: int, day: int, tz: tzinfo | None) -> Range:
    start = datetime(year, month, day, tzinfo=tz)
    return start, start + timedelta(days=1)


def _midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _valid(build: Callable[[], Range]) -> Range | None:
    try:
        return build()
    except ValueError:  # 2023年2月30日 and the like: not a date, so not a condition
        return None


# ---- numbers ----------------------------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15,
    "twenty": 20, "thirty": 30, "sixty": 60, "ninety": 90,
}
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}


def _num(text: str) -> int:
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    if text in _EN_NUMBERS:
        return _EN_NUMBERS[text]
    if text in _ORDINALS:
        return _ORDINALS[text]
    tens, ten, ones = text.partition("十")
    if ten:
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    return _CN_DIGITS[text]


_MONTH_NAMES = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_Y = r"((?:19|20)\d{2})"
_CN_N = r"(\d{1,3}|[一二两三四五六七八九十]{1,3})"
_CN_M = r"(1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])"
_CN_Q = r"(?:第([一二三四1-4])季度?|[Qq]([1-4]))"
_EN_MON = r"(" + "|".join(sorted(_MONTH_NAMES, key=len, reverse=True)) + r")\.?"
_EN_N = r"(\d{1,3}|" + "|".join(sorted(_EN_NUMBERS, key=len, reverse=True)) + r")"
_B = r"(?<![A-Za-z0-9])"  # English words must not be glued to letters or digits
_E = r"(?![A-Za-z0-9])"


def _month(name: str) -> int:
    return _MONTH_NAMES[name.lower().rstrip(".")]


def _recent_month(month: int, now: datetime) -> int:
    """The year of the most recent `month` not in the future ("in March" asked in February = last year)."""
    return now.year if month <= now.month else now.year - 1


def _relative_year(word: str, now: datetime) -> int:
    return now.year - {"今年": 0, "本年": 0, "去年": 1, "前年": 2, "大前年": 3, "this": 0, "last": 1, "previous": 1}[word.lower()]


def _quarter(year: int, q: int, tz: tzinfo | None) -> Range:
    return _months(year, 3 * q - 2, 3, tz)


def _ago(now: datetime, amount: int, unit: str) -> Range:
    unit = unit.lower()
    if unit in ("天", "日") or unit.startswith("day"):
        return now - timedelta(days=amount), now
    if unit in ("周", "星期") or unit.startswith("week"):
        return now - timedelta(weeks=amount), now
    if unit == "年" or unit.startswith("year"):
        return _shift_months(now, -12 * amount), now
    if unit.startswith("quarter"):
        return _shift_months(now, -3 * amount), now
    return _shift_months(now, -amount), now


def _shift_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = moment.day
    while True:
        try:
            return moment.replace(year=year, month=month + 1, day=day)
        except ValueError:  # 31 March minus one month: clamp to the last day
            day -= 1


def _this(unit: str, now: datetime, back: int) -> Range:
    """The calendar unit containing now, `back` units ago."""
    tz = now.tzinfo
    if unit == "month":
        return _months(now.year, now.month - back, 1, tz)
    if unit == "quarter":
        first = 3 * ((now.month - 1) // 3) + 1 - 3 * back
        return _months(now.year, first, 3, tz)
    if unit == "year":
        return _months(now.year - back, 1, 12, tz)
    if unit == "week":
        monday = _midnight(now) - timedelta(days=now.weekday(), weeks=back)
        return monday, monday + timedelta(weeks=1)
    day = _midnight(now) - timedelta(days=back)
    return day, day + timedelta(days=1)


# ---- patterns ------------------------------------------------------------------------------------------

Resolver = Callable[[re.Match[str], datetime], Range | None]


def _zh_relative_year(m: re.Match[str], now: datetime) -> Range | None:
    year, tz = _relative_year(m[1], now), now.tzinfo
    if m[2] or m[3]:
        return _quarter(year, _num(m[2] or m[3]), tz)
    if m[4]:
        return _months(year, _num(m[4]), 1, tz)
    if m[5]:
        return _months(year, 1 if m[5] == "上" else 7, 6, tz)
    return _months(year, 1, 12, tz)


def _en_relative(m: re.Match[str], now: datetime) -> Range:
    word, unit = m[1].lower(), m[2].lower()
    if word == "past":  # "the past year" is the last twelve months, not the last calendar year
        return _ago(now, 1, unit)
    return _this(unit, now, 0 if word == "this" else 1)


_PATTERNS: list[tuple[re.Pattern[str], Resolver]] = [(re.compile(p, re.IGNORECASE), r) for p, r in [
    # --- Chinese, absolute
    (_Y + r"\s*年" + _CN_M + r"月" + r"(\d{1,2}|[一二三四五六七八九十]{1,3})[日号]",
     lambda m, n: _valid(lambda: _day(int(m[1]), _num(m[2]), _num(m[3]), n.tzinfo))),
    (_Y + r"\s*年" + _CN_M + r"月份?\s*(?:到|至|~|-|—)\s*" + _CN_M + r"月份?",
     lambda m, n: _months(int(m[1]), _num(m[2]), _num(m[3]) - _num(m[2]) + 1, n.tzinfo) if _num(m[3]) >= _num(m[2]) else None),
    (_Y + r"\s*年" + _CN_M + r"月份?", lambda m, n: _months(int(m[1]), _num(m[2]), 1, n.tzinfo)),
    (_Y + r"\s*年?(?:的)?" + _CN_Q, lambda m, n: _quarter(int(m[1]), _num(m[2] or m[3]), n.tzinfo)),
    (_Y + r"\s*年(?:的)?([上下])半年", lambda m, n: _months(int(m[1]), 1 if m[2] == "上" else 7, 6, n.tzinfo)),
    (_Y + r"\s*年?\s*(?:到|至|~|-|—)\s*" + _Y + r"\s*年",
     lambda m, n: _months(int(m[1]), 1, 12 * (int(m[2]) - int(m[1]) + 1), n.tzinfo) if m[2] >= m[1] else None),
    (_Y + r"\s*年度?", lambda m, n: _months(int(m[1]), 1, 12, n.tzinfo)),
    # --- Chinese, relative
    (r"(大前年|前年|去年|今年|本年)(?:的?(?:" + _CN_Q + r"|" + _CN_M + r"月份?|([上下])半年))?", _zh_relative_year),
    (r"上上个?月", lambda m, n: _this("month", n, 2)),
    (r"上个?月", lambda m, n: _this("month", n, 1)),
    (r"(?:本|这个?|当)月", lambda m, n: _this("month", n, 0)),
    (r"上个?季度", lambda m, n: _this("quarter", n, 1)),
    (r"(?:本|这个?)季度", lambda m, n: _this("quarter", n, 0)),
    (r"上(?:个?星期|个?礼拜|周)", lambda m, n: _this("week", n, 1)),
    (r"(?:本|这)(?:个?星期|个?礼拜|周)", lambda m, n: _this("week", n, 0)),
    (r"今天|今日", lambda m, n: _this("day", n, 0)),
    (r"昨天|昨日", lambda m, n: _this("day", n, 1)),
    (r"(?<![之以])前天", lambda m, n: _this("day", n, 2)),
    (r"(?:最近|近|过去的?)\s*" + _CN_N + r"\s*(?:个)?(天|日|周|星期|月|年)", lambda m, n: _ago(n, _num(m[1]), m[2])),
    (r"(?:最近|近|过去的?)\s*(?:一)?(?:个)?(周|星期|月|年)", lambda m, n: _ago(n, 1, m[1])),
    (r"(?<![\d年])" + _CN_M + r"月份?(?![\d日号])",
     lambda m, n: _months(_recent_month(_num(m[1]), n), _num(m[1]), 1, n.tzinfo)),
    # --- numeric dates
    (r"(?<!\d)" + _Y + r"[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)",
     lambda m, n: _valid(lambda: _day(int(m[1]), int(m[2]), int(m[3]), n.tzinfo))),
    (r"(?<!\d)" + _Y + r"-(0[1-9]|1[0-2])(?![\d-])", lambda m, n: _months(int(m[1]), int(m[2]), 1, n.tzinfo)),
    # --- English, absolute
    (_B + r"(?:between|from)\s+" + _EN_MON + r"(?:\s+" + _Y + r")?\s+(?:and|to|through|until|-)\s+"
     + _EN_MON + r",?\s+" + _Y + _E,
     lambda m, n: _span_months(int(m[2] or m[4]), _month(m[1]), int(m[4]), _month(m[3]), n)),
    (_B + _EN_MON + r"\s*(?:-|–|to|through)\s*" + _EN_MON + r",?\s+" + _Y + _E,
     lambda m, n: _span_months(int(m[3]), _month(m[1]), int(m[3]), _month(m[2]), n)),
    (_B + _EN_MON + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+" + _Y + _E,
     lambda m, n: _valid(lambda: _day(int(m[3]), _month(m[1]), int(m[2]), n.tzinfo))),
    (_B + r"(\d{1,2})(?:st|nd|rd|th)?\s+" + _EN_MON + r",?\s+" + _Y + _E,
     lambda m, n: _valid(lambda: _day(int(m[3]), _month(m[2]), int(m[1]), n.tzinfo))),
    (_B + _EN_MON + r",?\s+(?:of\s+)?" + _Y + _E, lambda m, n: _months(int(m[2]), _month(m[1]), 1, n.tzinfo)),
    (_B + r"Q([1-4])\s*(?:of\s+)?" + _Y + _E, lambda m, n: _quarter(int(m[2]), int(m[1]), n.tzinfo)),
    (_B + _Y + r"\s*-?\s*Q([1-4])" + _E, lambda m, n: _quarter(int(m[1]), int(m[2]), n.tzinfo)),
    (_B + r"(?:the\s+)?(first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter\s+(?:of\s+)?" + _Y + _E,
     lambda m, n: _quarter(int(m[2]), _num(m[1]), n.tzinfo)),
    (_B + r"(?:the\s+)?(first|second|third|fourth|1st|2nd|3rd|4th|Q[1-4])\s+(?:quarter\s+)?(?:of\s+)?(this|last)\s+year" + _E,
     lambda m, n: _quarter(_relative_year(m[2], n), _num(m[1].lower().lstrip("q")), n.tzinfo)),
    (_B + r"(?:the\s+)?(first|second|1st|2nd)\s+half\s+(?:of\s+)?" + _Y + _E,
     lambda m, n: _months(int(m[2]), 1 if _num(m[1]) == 1 else 7, 6, n.tzinfo)),
    (_B + r"(?:between|from)\s+" + _Y + r"\s+(?:and|to|through|until|-)\s+" + _Y + _E,
     lambda m, n: _months(int(m[1]), 1, 12 * (int(m[2]) - int(m[1]) + 1), n.tzinfo) if m[2] >= m[1] else None),
    # --- English, relative
    (_B + r"(?:the\s+)?year\s+before\s+last" + _E, lambda m, n: _this("year", n, 2)),
    (_B + r"(?:the\s+)?month\s+before\s+last" + _E, lambda m, n: _this("month", n, 2)),
    (_B + r"(this|last|previous|past)\s+(year|quarter|month|week)" + _E, _en_relative),
    (_B + r"today" + _E, lambda m, n: _this("day", n, 0)),
    (_B + r"yesterday" + _E, lambda m, n: _this("day", n, 1)),
    (_B + r"(?:the\s+)?(?:last|past|previous)\s+" + _EN_N + r"\s+(days?|weeks?|months?|years?)" + _E,
     lambda m, n: _ago(n, _num(m[1]), m[2])),
    (_B + r"(?:in|during)\s+" + _EN_MON + r"(?!\s*\d)" + _E,
     lambda m, n: _months(_recent_month(_month(m[1]), n), _month(m[1]), 1, n.tzinfo)),
    (r"(?<![\d.\-/])" + _Y + r"(?![\d\-/]|\s*年)", lambda m, n: _months(int(m[1]), 1, 12, n.tzinfo)),
]]


def _span_months(y1: int, m1: int, y2: int, m2: int, now: datetime) -> Range | None:
    start, end = _month_start(y1, m1, now.tzinfo), _month_start(y2, m2 + 1, now.tzinfo)
    return (start, end) if start < end else None


# ---- combining and modifiers ---------------------------------------------------------------------------

_JOINER = re.compile(r"\s*(?:到|至|~|-|—|–|and|to|through|until)\s*$", re.IGNORECASE)
_RANGE_OPENER = re.compile(r"(?:between|from|从|自)\s*$", re.IGNORECASE)


def _merge_ranges(text: str, found: list[tuple[int, int, Range]]) -> list[tuple[int, int, Range]]:
    """Two dates joined by 'to'/'and'/'到' are one range: 2023年3月到2024年5月, from 2022 to 2024."""
    merged: list[tuple[int, int, Range]] = []
    for start, end, rng in found:
        if merged:
            p_start, p_end, p_rng = merged[-1]
            between = text[p_end:start]
            if _JOINER.fullmatch(between):
                opener = _RANGE_OPENER.search(text[:p_start])
                merged[-1] = (opener.start() if opener else p_start, end, (p_rng[0], rng[1]))
                continue
        merged.append((start, end, rng))
    return merged


# Words that open one side of a range, before the date ("since 2024") or after it ("2024年以来").
_OPEN_BEFORE = [
    ("since", re.compile(r"(?:since|starting|starting\s+from|自从)\s*$", re.IGNORECASE)),
    ("after", re.compile(r"(?:after|later\s+than)\s*$", re.IGNORECASE)),
    ("until", re.compile(r"(?:until|till|through|up\s+to)\s*$", re.IGNORECASE)),
    ("before", re.compile(r"(?:before|earlier\s+than|prior\s+to)\s*$", re.IGNORECASE)),
]
_OPEN_AFTER = [
    ("since", re.compile(r"^\s*(?:以来|起|开始|至今|onwards?)", re.IGNORECASE)),
    ("after", re.compile(r"^\s*(?:之后|以后|后)")),
    ("before", re.compile(r"^\s*(?:之前|以前|前)")),
]


def _with_modifiers(text: str, start: int, end: int, rng: Range) -> DateMatch:
    kind = None
    for name, pattern in _OPEN_BEFORE:
        if m := pattern.search(text[:start]):
            kind, start = name, m.start()
            break
    for name, pattern in _OPEN_AFTER:
        if m := pattern.match(text[end:]):
            kind, end = kind or name, end + m.end()  # 从2024年起: the leading word decides
            break
    lo, hi = rng
    if kind == "since":
        return DateMatch(lo, None, (start, end))
    if kind == "after":
        return DateMatch(hi, None, (start, end))
    if kind == "until":
        return DateMatch(None, hi, (start, end))
    if kind == "before":
        return DateMatch(None, lo, (start, end))
    return DateMatch(lo, hi, (start, end))
