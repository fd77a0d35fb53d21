"""Cut a loaded document into chunks by tokens of the embedding model's tokenizer.

Text: consecutive text sections under the same heading are joined (with a blank line, as in
`plain_text()`) into one run, so small neighbouring sections share chunks; regions read by OCR start
a new run on a new page. A run is cut into windows of at most `max_tokens`
tokens. When the run goes on past a window, the window ends at the last sentence or line boundary
in its final 20% if there is one (never so early that it would not advance past the overlap).
The next window always starts exactly `overlap` tokens before the previous one ended, so
neighbours share `overlap` tokens whether or not a boundary shortened the first. A chunk's text
is the exact source slice from its first token's start to its last token's end; under a heading
(OCR'd pages), a chunk that does not start with the heading gets it as its first line, and the
windows are shorter by the heading's tokens.

Tables: cut by rows, each piece holding as many whole rows as fit, every piece starting with the
caption and header lines. A row too big for the budget left after the header is cut by tokens like
text, the header repeated on each part. A header longer than half the budget is cut to half.

Token positions: `token_start`/`token_end` (end exclusive) count tokens through the whole document,
each text run and each rendered table (`TableSection.render()`) tokenized on its own, in section
order. A table piece's span covers its rows (the first piece also the header) in the rendered table;
the repeated header of later pieces is not counted again. Row costs are measured in the rendered
table, which assumes no token joins visible characters of two lines (true of whitespace-splitting
tokenizers, XLM-R's included).

Locations: a chunk carries the (page, box) of every located section its text overlaps; a table
piece, its table's.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from dataclasses import dataclass

from sieve.ingest.document import Box, LoadedDocument, TableSection, TextSection
from sieve.models.embedding import TextTokenizer

_CLOSERS = "\"'”’」』）)]》"
_CJK_ENDS = "。！？"
_LATIN_ENDS = ".!?"  # only when whitespace follows: not the dots of 3.14 or example.com
_WHITESPACE = re.compile(r"\s*")
_VISIBLE = re.compile(r"\S")
_TAIL_SHARE = 0.2  # a window may end early by at most this share to end on a boundary

Span = tuple[int, int]
Location = tuple[int, Box]  # page (1-based), box on it
Piece = tuple[str, int, int, tuple[Location, ...]]  # text, token_start, token_end, locations


@dataclass(frozen=True)
class ChunkSpan:
    ordinal: int
    text: str
    token_start: int
    token_end: int
    locations: tuple[Location, ...] = ()


def chunk_document(
    doc: LoadedDocument, tokenizer: TextTokenizer, max_tokens: int = 512, overlap: int = 80
) -> list[ChunkSpan]:
    if overlap < 0 or max_tokens <= overlap:
        raise ValueError(f"need max_tokens > overlap >= 0, got max_tokens={max_tokens}, overlap={overlap}")
    pieces: list[Piece] = []
    base = 0
    run: list[TextSection] = []
    for section in [*doc.sections, None]:  # None flushes the last text run
        if isinstance(section, TextSection) and (not run or _continues(run, section)):
            run.append(section)
            continue
        if run:
            base = _chunk_text(run, tokenizer, max_tokens, overlap, base, pieces)
            run = []
        if isinstance(section, TextSection):
            run.append(section)
        elif isinstance(section, TableSection):
            base = _chunk_table(section, tokenizer, max_tokens, overlap, base, pieces)
    return [ChunkSpan(i, text, start, end, where) for i, (text, start, end, where) in enumerate(pieces)]


def _continues(run: list[TextSection], section: TextSection) -> bool:
    """Whether `section` joins the run: same heading, and no page turn between regions read by OCR
    (a scan's chunk then cites one page; text-layer pages still share chunks across page breaks)."""
    last = run[-1]
    turned = section.page != last.page and bool(section.boxes or last.boxes)
    return section.heading == run[0].heading and not turned


def _chunk_text(
    run: list[TextSection], tokenizer: TextTokenizer, max_tokens: int, overlap: int, base: int, out: list[Piece]
) -> int:
    text = "\n\n".join(s.text for s in run)
    ranges, position = [], 0  # each section's character range in the run's text
    for section in run:
        ranges.append((position, position + len(section.text)))
        position += len(section.text) + 2
    heading = run[0].heading
    if heading:
        max_tokens = max(max_tokens - min(len(tokenizer.offsets(heading)), max_tokens // 2), overlap + 1)
    offsets = tokenizer.offsets(text)
    for start, end in _windows(text, offsets, max_tokens, overlap):
        first, last = offsets[start][0], offsets[end - 1][1]
        piece = text[first:last]
        if heading and not piece.startswith(heading):
            piece = f"{heading}\n{piece}"
        where = tuple(
            (s.page, box) for s, (lo, hi) in zip(run, ranges, strict=True) if s.page and lo < last and first < hi
            for box in s.boxes or [(0.0, 0.0, 1.0, 1.0)]
        )
        out.append((piece, base + start, base + end, where))
    return base + len(offsets)


def _windows(text: str, offsets: list[Span], max_tokens: int, overlap: int) -> list[Span]:
    """Token windows [start, end) over `offsets` (spans in `text`), as the module doc describes."""
    n = len(offsets)
    shortest = max(overlap + 1, math.ceil(max_tokens * (1 - _TAIL_SHARE)))
    windows: list[Span] = []
    start = 0
    while start < n:
        end = min(start + max_tokens, n)
        if end < n:
            end = next(
                (e for e in range(end, start + shortest - 1, -1) if _ends_sentence(text, offsets, e - 1)), end
            )
        windows.append((start, end))
        if end == n:
            break
        start = end - overlap
    return windows


def _ends_sentence(text: str, offsets: list[Span], i: int) -> bool:
    """Whether a boundary follows token i: a line break, or a sentence end (closing quotes allowed)."""
    end = offsets[i][1]
    following = _WHITESPACE.match(text, end).group()  # type: ignore[union-attr]
    if "\n" in following:
        return True
    last = text[max(0, end - 16) : end].rstrip(_CLOSERS)[-1:]
    if not last:
        return False
    return last in _CJK_ENDS or (last in _LATIN_ENDS and bool(following))


def _chunk_table(
    table: TableSection,
    tokenizer: TextTokenizer,
    max_tokens: int,
    overlap: int,
    base: int,
    out: list[Piece],
) -> int:
    rendered = table.render()
    offsets = tokenizer.offsets(rendered)
    if not offsets:
        return base
    where = tuple((table.page, box) for box in table.boxes or [(0.0, 0.0, 1.0, 1.0)]) if table.page else ()
    if not table.rows:  # a lone header is just text
        for start, end in _windows(rendered, offsets, max_tokens, overlap):
            out.append((rendered[offsets[start][0] : offsets[end - 1][1]], base + start, base + end, where))
        return base + len(offsets)

    # character and token range of every rendered line. A token belongs to the line of its first
    # visible character: XLM-R-style tokenizers give a line break to the next line's first token.
    line_starts, line_ends = [], []
    position = 0
    for line in rendered.split("\n"):
        line_starts.append(position)
        line_ends.append(position + len(line))
        position += len(line) + 1
    anchors = [m.start() if (m := _VISIBLE.search(rendered, s, e)) else s for s, e in offsets]
    bounds = [bisect_left(anchors, c) for c in line_starts] + [len(offsets)]
    n_head = len(table.header_lines())
    rows = [(bounds[n_head + r], bounds[n_head + r + 1]) for r in range(len(table.rows))]

    head_tokens = min(bounds[n_head], max_tokens // 2)
    head = rendered[: offsets[head_tokens - 1][1]] if head_tokens else ""
    budget = max_tokens - head_tokens
    first_piece = len(out)

    def emit(body: str, start: int, end: int) -> None:
        start = 0 if len(out) == first_piece else start  # the first piece's span includes the header
        # strip: a tokenizer may give the line break itself to the header's or the row's last token
        out.append(("\n".join(part for part in (head.rstrip(), body.strip()) if part), base + start, base + end, where))

    r = 0
    while r < len(rows):
        lo, hi = rows[r]
        if hi - lo > budget:  # one row alone is too big: cut it by tokens
            row_offsets = offsets[lo:hi]
            for start, end in _windows(rendered, row_offsets, budget, min(overlap, budget // 2)):
                emit(rendered[row_offsets[start][0] : row_offsets[end - 1][1]], lo + start, lo + end)
            r += 1
            continue
        last = r
        while last + 1 < len(rows) and rows[last + 1][1] - lo <= budget:
            last += 1
        emit(rendered[line_starts[n_head + r] : line_ends[n_head + last]], lo, rows[last][1])
        r = last + 1
    return base + len(offsets)
