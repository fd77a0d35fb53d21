"""Loaders on real files built in tmp_path: what a user sees in titles, text, tables and errors."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import docx
import pytest
from openpyxl import Workbook
from pypdf import PdfWriter

from sieve.ingest.document import TableSection, TextSection
from sieve.ingest.loaders import SUPPORTED_SUFFIXES, LoaderError, discover, iter_beir_corpus, load_file


def make_pdf(*pages: str) -> bytes:
    """A minimal valid PDF, one Helvetica text line per page (ASCII only)."""
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        bodies.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R"
            " /Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        bodies.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(bodies) + 1, xref)
    return out


def rewrite_pdf(data: bytes, *, title: str | None = None, password: str | None = None) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(data))
    if title:
        writer.add_metadata({"/Title": title})
    if password:
        writer.encrypt(user_password=password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def write(path: Path, content: bytes | str) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def texts(sections: list) -> str:
    return "\n".join(s.text for s in sections if isinstance(s, TextSection))


def tables(sections: list) -> list[TableSection]:
    return [s for s in sections if isinstance(s, TableSection)]


# ---------------------------------------------------------------- formats


def test_txt_keeps_text_and_uses_the_file_name_as_title(tmp_path: Path) -> None:
    doc = load_file(write(tmp_path / "notes.txt", "\ufeffline one\r\n第二行\r\n"))
    assert doc.title == "notes"
    assert doc.plain_text() == "line one\n第二行"
    assert doc.mime_type == "text/plain"
    assert doc.meta["filename"] == "notes.txt"


def test_markdown_title_text_and_table(tmp_path: Path) -> None:
    md = (
        "Intro line.\n\n# 季度报告\n\nSome **bold** text.\n\n"
        "| Name | Score |\n|------|------:|\n| Ann  | 90 |\n| 李雷 | 85 |\n\n"
        "After the table.\n\n```\n| code | not a table |\n```\n"
    )
    doc = load_file(write(tmp_path / "report.md", md))
    assert doc.title == "季度报告"
    [table] = tables(doc.sections)
    assert table.header == ["Name", "Score"]
    assert table.rows == [["Ann", "90"], ["李雷", "85"]]
    body = texts(doc.sections)
    assert "Some **bold** text." in body and "After the table." in body
    assert "| code | not a table |" in body  # a fenced block is text, not a table
    assert "|------|" not in doc.plain_text()


def test_markdown_without_heading_is_titled_by_file_name(tmp_path: Path) -> None:
    assert load_file(write(tmp_path / "plain-notes.md", "just text\n")).title == "plain-notes"


def test_html_drops_scripts_and_navigation_and_keeps_tables(tmp_path: Path) -> None:
    html = """<!doctype html><html><head><title>Store page</title>
    <script>alert("x")</script><style>p{color:red}</style></head>
    <body><nav>Home | Login</nav><h1>Prices</h1>
    <p>Our <b>current</b> prices:</p>
    <table><caption>2024</caption><tr><th>Item</th><th>Price</th></tr>
    <tr><td>Tea</td><td>3</td></tr><tr><td>Coffee</td><td>4</td></tr></table>
    <p>Prices include tax.</p><!-- hidden comment --></body></html>"""
    doc = load_file(write(tmp_path / "page.html", html))
    assert doc.title == "Store page"
    text = doc.plain_text()
    assert "alert" not in text and "color" not in text and "Login" not in text and "hidden" not in text
    assert texts(doc.sections) == "Prices\nOur current prices:\nPrices include tax."
    [table] = tables(doc.sections)
    assert (table.caption, table.header, table.rows) == ("2024", ["Item", "Price"], [["Tea", "3"], ["Coffee", "4"]])
    # the table sits between the paragraphs, in document order
    assert isinstance(doc.sections[1], TableSection)


def test_html_title_falls_back_to_h1(tmp_path: Path) -> None:
    assert load_file(write(tmp_path / "a.htm", "<h1>Welcome</h1><p>x</p>")).title == "Welcome"


def test_pdf_text_pages_and_metadata_title(tmp_path: Path) -> None:
    data = rewrite_pdf(make_pdf("Hello from page one.", "Second page here."), title="Annual Report")
    doc = load_file(write(tmp_path / "report.pdf", data))
    assert doc.title == "Annual Report"
    assert [s.text for s in doc.sections] == ["Hello from page one.", "Second page here."]
    assert doc.meta["pages"] == 2
    assert doc.mime_type == "application/pdf"


def test_pdf_without_title_is_titled_by_file_name(tmp_path: Path) -> None:
    assert load_file(write(tmp_path / "scan-01.pdf", make_pdf("Some text"))).title == "scan-01"


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Team summary", level=1)
    document.add_paragraph("Before the table.")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([["Name", "Role"], ["张三", "Engineer"], ["Li", "Manager"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("After the table.")
    document.core_properties.author = "Zhang San"
    path = tmp_path / "team.docx"
    document.save(path)

    doc = load_file(path)
    assert doc.title == "Team summary"
    assert [type(s) for s in doc.sections] == [TextSection, TableSection, TextSection]
    assert doc.sections[0].text == "Team summary\nBefore the table."
    assert doc.sections[1].header == ["Name", "Role"]
    assert doc.sections[1].rows == [["张三", "Engineer"], ["Li", "Manager"]]
    assert doc.sections[2].text == "After the table."
    assert doc.meta["author"] == "Zhang San"


def test_docx_title_from_core_properties(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Body only.")
    document.core_properties.title = "Official Title"
    path = tmp_path / "t.docx"
    document.save(path)
    assert load_file(path).title == "Official Title"


def test_csv_with_bom_and_semicolons(tmp_path: Path) -> None:
    content = "\ufeff城市;人口;备注\n北京;2189;\"capital; big\"\n上海;2487;\n"
    doc = load_file(write(tmp_path / "cities.csv", content))
    [table] = doc.sections
    assert table.header == ["城市", "人口", "备注"]
    assert table.rows == [["北京", "2189", "capital; big"], ["上海", "2487", ""]]
    assert doc.title == "cities"


def test_xlsx_one_table_per_non_empty_sheet(tmp_path: Path) -> None:
    workbook = Workbook()
    sales = workbook.active
    sales.title = "Sales"
    sales.append(["Month", "Revenue", "Date"])
    sales.append(["Jan", 1200.0, datetime(2024, 1, 31)])
    sales.append(["Feb", 980.5, datetime(2024, 2, 29)])
    workbook.create_sheet("Empty")
    staff = workbook.create_sheet("Staff")
    staff.append(["Name"])
    staff.append(["Wang"])
    path = tmp_path / "book.xlsx"
    workbook.save(path)

    doc = load_file(path)
    assert [t.caption for t in doc.sections] == ["Sales", "Staff"]
    sales_table = doc.sections[0]
    assert sales_table.header == ["Month", "Revenue", "Date"]
    assert sales_table.rows == [["Jan", "1200", "2024-01-31"], ["Feb", "980.5", "2024-02-29"]]
    assert doc.meta["sheets"] == ["Sales", "Empty", "Staff"]
    assert doc.plain_text().startswith("Sales\nMonth | Revenue | Date\nJan | 1200 | 2024-01-31")


def test_a_file_without_suffix_is_sniffed(tmp_path: Path) -> None:
    assert load_file(write(tmp_path / "README", "plain words")).plain_text() == "plain words"
    assert load_file(write(tmp_path / "download", make_pdf("Sniffed PDF"))).mime_type == "application/pdf"


# ---------------------------------------------------------------- errors


def test_unsupported_suffix_names_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match=r"unsupported file type \.exe \(supported: .*\.pdf.*\)"):
        load_file(write(tmp_path / "setup.exe", b"MZ\x90\x00"))


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(LoaderError, match="file is empty"):
        load_file(write(tmp_path / "empty.txt", content))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="no such file"):
        load_file(tmp_path / "gone.md")


def test_non_utf8_text_says_so(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="not UTF-8 text: gbk.csv .*save it as UTF-8"):
        load_file(write(tmp_path / "gbk.csv", "城市,人口\n北京,2189\n".encode("gbk")))


@pytest.mark.parametrize(
    "content",
    [b"%PDF-1.4\n1 0 obj <<< garbage", b"this is not a pdf at all"],
    ids=["truncated", "not-a-pdf"],
)
def test_corrupt_pdf(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(LoaderError, match="corrupt or encrypted PDF: bad.pdf"):
        load_file(write(tmp_path / "bad.pdf", content))


def test_password_protected_pdf(tmp_path: Path) -> None:
    data = rewrite_pdf(make_pdf("Secret text"), password="s3cret")
    with pytest.raises(LoaderError, match="corrupt or encrypted PDF: locked.pdf is password-protected"):
        load_file(write(tmp_path / "locked.pdf", data))


def test_pdf_without_text_suggests_ocr(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(LoaderError, match="no text layer, and OCR found nothing"):
        load_file(write(tmp_path / "scan.pdf", buffer.getvalue()))


@pytest.mark.parametrize("name", ["old.docx", "old.xlsx"])
def test_corrupt_office_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoaderError, match=f"corrupt {name[-4:].upper()}.*{name}"):
        load_file(write(tmp_path / name, b"\xd0\xcf\x11\xe0 legacy binary office file"))


# ---------------------------------------------------------------- corpora and folders


def test_beir_corpus_yields_ids_titles_and_text(tmp_path: Path) -> None:
    lines = [
        {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever."},
        {"_id": 2, "title": "", "text": "无标题的中文段落。"},
    ]
    corpus = write(tmp_path / "corpus.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n")
    docs = list(iter_beir_corpus(corpus))
    assert [beir_id for beir_id, _ in docs] == ["d1", "2"]
    assert docs[0][1].title == "Aspirin" and docs[0][1].plain_text() == "Aspirin reduces fever."
    assert docs[1][1].plain_text() == "无标题的中文段落。"


def test_beir_corpus_names_the_malformed_line(tmp_path: Path) -> None:
    corpus = write(tmp_path / "corpus.jsonl", '{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "x"}\n{"_id": "c", "te\n')
    docs = iter_beir_corpus(corpus)
    assert next(docs)[0] == "a"
    with pytest.raises(LoaderError, match=r"corpus.jsonl: line 3: malformed JSON"):
        list(docs)


def test_beir_record_without_id(tmp_path: Path) -> None:
    corpus = write(tmp_path / "corpus.jsonl", '{"title": "t", "text": "x"}\n')
    with pytest.raises(LoaderError, match='line 1: not a BEIR record'):
        list(iter_beir_corpus(corpus))


def test_discover_expands_folders_to_supported_visible_files(tmp_path: Path) -> None:
    for name in ["b.md", "a.txt", "sub/c.PDF", "sub/deep/d.xlsx", "skip.exe", ".hidden.md", ".git/config.txt", "~$lock.docx"]:
        path = tmp_path / "kb" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    single = write(tmp_path / "single.csv", "a,b\n1,2\n")
    found = discover([tmp_path / "kb", single])
    kb = tmp_path / "kb"
    assert found == sorted([kb / "a.txt", kb / "b.md", kb / "sub/c.PDF", kb / "sub/deep/d.xlsx", single])


def test_discover_rejects_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="no such file or folder"):
        discover([tmp_path / "nowhere"])


def test_supported_suffixes_cover_the_documented_formats() -> None:
    assert {".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".csv", ".xlsx"} <= set(SUPPORTED_SUFFIXES)


def test_markdown_front_matter_becomes_document_metadata(tmp_path):
    path = tmp_path / "weekly.md"
    path.write_text("---\nowner: 张伟\ncreated_at: 2023-03-01\ntags: [周报, 训练]\n---\n# 第十周周报\n\n本周完成了模型训练。\n")
    doc = load_file(path)
    assert doc.title == "第十周周报"
    assert doc.meta["owner"] == "张伟" and doc.meta["created_at"] == "2023-03-01"
    assert doc.meta["tags"] == ["周报", "训练"]
    assert "owner" not in doc.plain_text() and "本周完成了模型训练" in doc.plain_text()
