"""The loaded-document type every loader returns and the chunker consumes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SPACE = re.compile(r"\s+")

# a region of a page as fractions of its width and height: x0, y0, x1, y1
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TextSection:
    """A run of running text (paragraphs separated by newlines).

    `heading` is the title the text sits under (OCR'd pages: every chunk of it repeats the title);
    `page` (1-based, 0 = not paged) and `boxes` say where on the page the text was read.
    """

    text: str
    heading: str = ""
    page: int = 0
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True)
class TableSection:
    """A table: the header row, the data rows and an optional caption (xlsx: the sheet name)."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    page: int = 0
    boxes: tuple[Box, ...] = ()

    def header_lines(self) -> list[str]:
        """The lines every piece of this table starts with: the caption (if any), then the header."""
        lines = [render_row([self.caption])] if self.caption.strip() else []
        return [*lines, render_row(self.header)]

    def render(self) -> str:
        return "\n".join(self.header_lines() + [render_row(row) for row in self.rows])


Section = TextSection | TableSection


@dataclass(frozen=True)
class PageImage:
    """A picture for the `image` recall path: an image file's page, or a figure on an OCR'd page."""

    page: int
    box: Box
    image: Any  # a small PIL image: CLIP-style models read 224-336 px


def render_row(cells: list[str]) -> str:
    """One table row as one line; whitespace inside cells collapses so a row never spans lines."""
    return " | ".join(_SPACE.sub(" ", cell).strip() for cell in cells)


def render_section(section: Section) -> str:
    return section.text if isinstance(section, TextSection) else section.render()


@dataclass
class LoadedDocument:
    """What a loader extracted from one file.

    `meta` holds what the file itself says (filename, size, and where available author, created,
    pages, sheets); the indexing pipeline adds its own keys (hash, knowledge base ...).
    """

    title: str
    sections: list[Section]
    mime_type: str
    meta: dict[str, Any] = field(default_factory=dict)
    images: list[PageImage] = field(default_factory=list)  # kept only when an image embedder is configured

    def plain_text(self) -> str:
        """All sections as text (tables rendered as `a | b` lines), separated by blank lines.

        Text chunks are exact slices of this string.
        """
        return "\n\n".join(render_section(s) for s in self.sections)
