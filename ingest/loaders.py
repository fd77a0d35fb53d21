"""File loaders: one file in, one `LoadedDocument` out, or a `LoaderError` a user can act on.

Each parsing library is imported inside its loader, so commands that load no such file skip its cost.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sieve.errors import InvalidInput
from sieve.ingest.document import LoadedDocument, PageImage, Section, TableSection, TextSection

log = logging.getLogger(__name__)


class LoaderError(InvalidInput):
    """A file that cannot be loaded; the message says why and what to do about it."""


Loader = Callable[[bytes, str], LoadedDocument]


@dataclass(frozen=True)
class _Format:
    load: Loader
    # what the message says when the parsing library itself fails, and what the user can do
    failure: str
    hint: str = ""


# ---------------------------------------------------------------- text formats


def _decode(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), or UTF-16 when it carries a BOM (Excel's "Unicode text")."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    else:
        if b"\x00" in data[:8192]:
            raise LoaderError(f"{name} looks like a binary file, not text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LoaderError(
                f"not UTF-8 text: {name} (invalid byte 0x{data[exc.start]:02x} at offset {exc.start});"
                " save it as UTF-8 and try again"
            ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _load_txt(data: bytes, name: str) -> LoadedDocument:
    sections: list[Section] = []
    _append_text(sections, _decode(data, name))
    return LoadedDocument(Path(name).stem, sections, "text/plain")


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """`key: value` lines between leading `---` fences become document metadata (owner, tags ...)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta: dict[str, Any] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            value = value.strip().strip("\"'")
            meta[key.strip()] = [t.strip() for t in value.strip("[]").split(",") if t.strip()] if key.strip() == "tags" else value
    return meta, text[match.end() :]


def _load_md(data: bytes, name: str) -> LoadedDocument:
    from markdown_it import MarkdownIt

    meta, text = _front_matter(_decode(data, name))
    lines = text.split("\n")  # markdown-it's line numbers count "\n" only, unlike splitlines()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    sections: list[Section] = []
    title = ""
    cursor = 0  # first source line not yet emitted
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and not title:
            title = tokens[i + 1].content.strip()
        elif tok.type == "table_open" and tok.map:
            start, end = tok.map
            _append_text(sections, "\n".join(lines[cursor:start]))
            sections.append(_md_table(tokens, i))
            cursor = end
    _append_text(sections, "\n".join(lines[cursor:]))
    return LoadedDocument(meta.pop("title", "") or title or Path(name).stem, sections, "text/markdown", meta)


def _md_table(tokens: list[Any], open_index: int) -> TableSection:
    header: list[str] = []
    rows: list[list[str]] = []
    row: list[str] = []
    for tok in tokens[open_index + 1 :]:
        if tok.type == "table_close":
            break
        if tok.type == "tr_open":
            row = []
        elif tok.type == "inline":
            row.append(tok.content.strip())
        elif tok.type == "tr_close":
            if header:
                rows.append(row)
            else:
                header = row
    return TableSection(header, rows)


def _append_text(sections: list[Section], text: str) -> None:
    if text.strip():
        sections.append(TextSection(text.strip()))


# ---------------------------------------------------------------- html

_DROPPED_TAGS = ["script", "style", "nav", "noscript", "template"]
_BLOCK_TAGS = [
    "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "ol", "p", "pre", "section", "summary", "tr", "ul",
]  # fmt: skip


def _load_html(data: bytes, name: str) -> LoadedDocument:
    from bs4 import BeautifulSoup, NavigableString

    # bytes in: BeautifulSoup honours <meta charset> and sniffs the encoding itself
    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(_DROPPED_TAGS):
        tag.decompose()
    title = _html_text(soup.title) if soup.title else ""
    if not title and (h1 := soup.find("h1")):
        title = _html_text(h1)
    for tag in soup(["head", "title"]):
        tag.decompose()

    # Mark block boundaries and outermost tables in the tree, then read the strings in document
    # order (an iterative walk: real pages nest deeper than Python's recursion limit allows).
    breaks: set[int] = set()
    tables: dict[int, TableSection] = {}
    for table in soup.find_all("table"):
        if table.find_parent("table") is None:
            mark = NavigableString("")
            if parsed := _html_table(table):
                tables[id(mark)] = parsed
            table.replace_with(mark)
    for tag in soup(_BLOCK_TAGS):
        before, after = NavigableString(""), NavigableString("")
        breaks.update((id(before), id(after)))
        tag.insert_before(before)
        tag.append(after)

    sections: list[Section] = []
    lines: list[str] = []
    line: list[str] = []
    for node in soup.descendants:
        if type(node) is not NavigableString:  # comments, doctype, CDATA are not content
            continue
        if id(node) in breaks or id(node) in tables:
            lines.append("".join(line))
            line = []
            if id(node) in tables:
                _append_text(sections, _join_lines(lines))
                lines = []
                sections.append(tables[id(node)])
        elif node.find_parent("pre") is not None:  # preformatted: its newlines are line breaks
            first, *rest = str(node).split("\n")
            line.append(first)
            for part in rest:
                lines.append("".join(line))
                line = [part]
        else:
            line.append(re.sub(r"\s+", " ", node))
    lines.append("".join(line))
    _append_text(sections, _join_lines(lines))
    return LoadedDocument(title or Path(name).stem, sections, "text/html")


def _join_lines(lines: list[str]) -> str:
    return "\n".join(stripped for line in lines if (stripped := line.strip()))


def _html_text(tag: Any) -> str:
    return re.sub(r"\s+", " ", tag.get_text(" ")).strip()


def _html_table(table: Any) -> TableSection | None:
    trs = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    rows = [[_html_text(cell) for cell in tr.find_all(["th", "td"], recursive=False)] for tr in trs]
    rows = [row for row in rows if any(row)]
    if not rows:
        return None
    caption = _html_text(table.caption) if table.caption else ""
    # without <th>/<thead> the first row still serves as the header every piece repeats
    return TableSection(rows[0], rows[1:], caption)


# ---------------------------------------------------------------- pdf / docx


def _load_pdf(data: bytes, name: str) -> LoadedDocument:
    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise LoaderError(f"corrupt or encrypted PDF: {name} is not a PDF file")
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not _decrypts_without_password(reader):
        raise LoaderError(f"corrupt or encrypted PDF: {name} is password-protected; remove the password first")
    pages = [(page.extract_text() or "").replace("\r\n", "\n").strip() for page in reader.pages]
    sections: list[Section] = [TextSection(text, page=i + 1) for i, text in enumerate(pages) if text]
    images: list[PageImage] = []
    if scanned := [i for i, text in enumerate(pages) if not text]:  # no text layer: read the pages' images
        read, images = _ocr_pdf(data, name, scanned)
        sections = sorted([*sections, *read], key=lambda s: s.page)
    if not sections:
        raise LoaderError(f"PDF has no text: {name} (no text layer, and OCR found nothing on its {len(pages)} pages)")
    info = reader.metadata
    meta: dict[str, Any] = {"pages": len(pages)}
    if scanned:
        meta["ocr_pages"] = len(scanned)
    if info and info.author:
        meta["author"] = str(info.author)
    title = str(info.title).strip() if info and info.title else ""
    return LoadedDocument(title or _first_heading(sections) or Path(name).stem, sections, "application/pdf", meta,
                          images)


def _ocr_pdf(data: bytes, name: str, indexes: list[int]) -> tuple[list[Section], list[PageImage]]:
    from sieve.ingest import ocr

    limits = ocr.OcrLimits.from_settings()
    drawn = ocr.pdf_pages_with_content(data, indexes)  # an empty page costs neither rendering nor OCR
    if len(drawn) > limits.max_pages:
        raise LoaderError(f"{name} has {len(drawn)} pages without a text layer; OCR reads at most "
                          f"{limits.max_pages} per file (SIEVE_OCR_MAX_PAGES): split it, or raise the limit")
    return ocr.read_pages(name, len(drawn), ocr.pdf_pages(data, drawn, limits))


# ---------------------------------------------------------------- images (OCR)

_IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".tif": "image/tiff", ".tiff": "image/tiff", ".bmp": "image/bmp"}


def _load_image(data: bytes, name: str) -> LoadedDocument:
    from sieve.ingest import ocr

    total, pages = ocr.image_pages(data, name, ocr.OcrLimits.from_settings())
    sections, images = ocr.read_pages(name, total, pages, whole_pages=True)
    if not sections:
        raise LoaderError(f"no text found in {name}: OCR read nothing in the image "
                          "(an image embedder, SIEVE_IMAGE_EMBEDDER_MODEL_PATH, would index the picture itself)")
    mime = _IMAGE_MIME.get(Path(name).suffix.lower(), "image/png")
    return LoadedDocument(_first_heading(sections) or Path(name).stem, sections, mime, {"pages": total}, images)


def _first_heading(sections: list[Section]) -> str:
    return next((s.heading for s in sections if isinstance(s, TextSection) and s.heading), "")[:200]


def _decrypts_without_password(reader: Any) -> bool:
    """Many PDFs are "encrypted" only to restrict printing, with an empty user password."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # pypdf raises DependencyError for AES without `cryptography`, among others
        log.warning("decrypting a PDF with the empty password failed; it is refused as encrypted", exc_info=True)
        return False


def _load_docx(data: bytes, name: str) -> LoadedDocument:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    sections: list[Section] = []
    paragraphs: list[str] = []
    heading = ""
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            _append_text(sections, "\n".join(paragraphs))
            paragraphs = []
            rows = [[cell.text.strip() for cell in row.cells] for row in block.rows]
            rows = [row for row in rows if any(row)]
            if rows:
                sections.append(TableSection(rows[0], rows[1:]))
        elif text := block.text.strip():
            style = block.style.name if block.style is not None else ""
            if not heading and (style == "Title" or style.startswith("Heading")):
                heading = text
            paragraphs.append(text)
    _append_text(sections, "\n".join(paragraphs))
    props = document.core_properties
    meta: dict[str, Any] = {}
    if props.author:
        meta["author"] = props.author
    if props.created:
        meta["created"] = props.created.isoformat()
    title = (props.title or "").strip() or heading or Path(name).stem
    return LoadedDocument(title, sections, _DOCX_MIME, meta)


# ---------------------------------------------------------------- spreadsheets


def _load_csv(data: bytes, name: str) -> LoadedDocument:
    text = _decode(data, name)
    sample = text[:16384]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only, or the sniffer guesses wrong
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:  # a single column, or nothing consistent: take the suffix's word for it
        dialect = csv.excel_tab if name.lower().endswith(".tsv") else csv.excel
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
    rows = [row for row in rows if any(row)]
    if not rows:
        raise LoaderError(f"file is empty: {name} has no rows")
    return LoadedDocument(Path(name).stem, [TableSection(rows[0], rows[1:])], "text/csv")


def _load_xlsx(data: bytes, name: str) -> LoadedDocument:
    from openpyxl import load_workbook

    with warnings.catch_warnings():  # openpyxl warns about every unsupported extension it skips
        warnings.simplefilter("ignore")
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sections: list[Section] = []
        for sheet in workbook.worksheets:
            rows = [_trim([_cell_text(v) for v in row]) for row in sheet.iter_rows(values_only=True)]
            rows = [row for row in rows if row]
            if rows:
                sections.append(TableSection(rows[0], rows[1:], caption=sheet.title))
        sheets = workbook.sheetnames
    finally:
        workbook.close()
    if not sections:
        raise LoaderError(f"file is empty: every sheet of {name} is blank")
    return LoadedDocument(Path(name).stem, sections, _XLSX_MIME, {"sheets": sheets})


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date().isoformat()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _trim(row: list[str]) -> list[str]:
    """Drop trailing blank cells: read-only sheets often report a used range far wider than the data."""
    while row and not row[-1]:
        row.pop()
    return row


# ---------------------------------------------------------------- dispatch

_DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_FORMATS: dict[str, _Format] = {
    ".txt": _Format(_load_txt, "unreadable text file"),
    ".md": _Format(_load_md, "unreadable Markdown"),
    ".markdown": _Format(_load_md, "unreadable Markdown"),
    ".html": _Format(_load_html, "unreadable HTML"),
    ".htm": _Format(_load_html, "unreadable HTML"),
    ".pdf": _Format(_load_pdf, "corrupt or encrypted PDF"),
    ".docx": _Format(_load_docx, "corrupt DOCX", "; if it is an old .doc, open it in Word and save it as .docx"),
    ".csv": _Format(_load_csv, "unreadable CSV"),
    ".tsv": _Format(_load_csv, "unreadable TSV"),
    ".xlsx": _Format(_load_xlsx, "corrupt XLSX", "; if it is an old .xls, open it in Excel and save it as .xlsx"),
    **{suffix: _Format(_load_image, "corrupt or unreadable image") for suffix in _IMAGE_MIME},
}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_FORMATS)


def load_file(path: Path) -> LoadedDocument:
    """Load one file; the suffix picks the loader (a file without one is sniffed)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LoaderError(f"no such file: {path}") from None
    except OSError as exc:
        raise LoaderError(f"cannot read {path}: {exc.strerror or exc}") from None
    return load_bytes(data, path.name)


def load_bytes(data: bytes, filename: str) -> LoadedDocument:
    """Load file content already in memory (an upload); `filename` supplies the suffix and title."""
    suffix = Path(filename).suffix.lower() or _sniff(data)
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        kind = suffix or "without a suffix"
        raise LoaderError(f"unsupported file type {kind} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    if not data.strip():
        raise LoaderError(f"file is empty: {filename}")
    try:
        doc = fmt.load(data, filename)
    except LoaderError:
        raise
    except Exception as exc:  # parsers raise anything from KeyError to zlib.error on a bad file
        raise LoaderError(f"{fmt.failure}: {filename} ({str(exc) or type(exc).__name__}){fmt.hint}") from exc
    if not doc.sections:
        raise LoaderError(f"no text found in {filename}")
    doc.meta = {"filename": filename, "size": len(data), **doc.meta}
    return doc


def _sniff(data: bytes) -> str:
    """The suffix a suffix-less file's content points to, or "" when it is not recognisably ours."""
    if image := _image_suffix(data[:16]):
        return image
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return ".pdf"
    if head.startswith(b"pk\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            return ""
        return ".docx" if "word/document.xml" in names else ".xlsx" if "xl/workbook.xml" in names else ""
    if head.startswith((b"<!doctype html", b"<html")):
        return ".html"
    if b"\x00" not in head:
        try:
            data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return ""
        return ".txt"
    return ""


def _image_suffix(magic: bytes) -> str:
    if magic.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if magic.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if magic[:4] == b"RIFF" and magic[8:12] == b"WEBP":
        return ".webp"
    if magic.startswith((b"II*\x00", b"MM\x00*")):
        return ".tiff"
    return ".bmp" if magic.startswith(b"BM") else ""


# ---------------------------------------------------------------- corpora and folders


def iter_beir_corpus(path: Path) -> Iterator[tuple[str, LoadedDocument]]:
    """(BEIR `_id`, document) for every line of a BEIR `corpus.jsonl`, streamed."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise LoaderError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)  # bytes: json detects UTF-8 and skips a BOM itself
            except json.JSONDecodeError as exc:
                raise LoaderError(f"{path}: line {lineno}: malformed JSON ({exc.msg})") from None
            except UnicodeDecodeError:
                raise LoaderError(f"{path}: line {lineno}: not UTF-8 text") from None
            if not isinstance(record, dict) or "_id" not in record:
                raise LoaderError(f'{path}: line {lineno}: not a BEIR record (an object with "_id")')
            doc_id = str(record["_id"])
            text = str(record.get("text") or "")
            doc = LoadedDocument(
                str(record.get("title") or ""),
                [TextSection(text)] if text.strip() else [],
                "text/plain",
                {"beir_id": doc_id},
            )
            yield doc_id, doc


def discover(paths: list[Path]) -> list[Path]:
    """Files to ingest: given files as they are, folders searched recursively for supported files.

    Hidden files and folders (".name") and Office lock files ("~$name") inside folders are skipped.
    """
    found: set[Path] = set()
    for path in paths:
        if path.is_file():
            found.add(path)
        elif path.is_dir():
            for candidate in path.rglob("*"):
                parts = candidate.relative_to(path).parts
                if (
                    candidate.suffix.lower() in _FORMATS
                    and not any(p.startswith((".", "~$")) for p in parts)
                    and candidate.is_file()
                ):
                    found.add(candidate)
        else:
            raise LoaderError(f"no such file or folder: {path}")
    return sorted(found)
