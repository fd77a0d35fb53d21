"""The token chunker, with a small real tokenizer: words and punctuation are tokens, CJK chars one each."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sieve.ingest.chunker import ChunkSpan, chunk_document
from sieve.ingest.document import LoadedDocument, Section, TableSection, TextSection


class RegexTokenizer:
    _TOKEN = re.compile(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+|[^\w\s]")

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._TOKEN.finditer(text)]


TOK = RegexTokenizer()


def doc(*sections: Section) -> LoadedDocument:
    return LoadedDocument("t", list(sections), "text/plain")


def n_tokens(text: str) -> int:
    return len(TOK.offsets(text))


def check_text_chunks(text: str, chunks: list[ChunkSpan], max_tokens: int, overlap: int) -> None:
    """Every property a single text section's chunks must have."""
    offsets = TOK.offsets(text)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert 0 < c.token_end - c.token_start <= max_tokens
        # exact source slice between the first and last token of the span
        assert c.text == text[offsets[c.token_start][0] : offsets[c.token_end - 1][1]]
        assert n_tokens(c.text) == c.token_end - c.token_start
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.token_start == prev.token_end - overlap
    # together they cover every token, from the first to the last
    assert chunks[0].token_start == 0 and chunks[-1].token_end == len(offsets)
    stitched = [t for c in chunks[:1] for t in TOK.offsets(c.text)]
    for c in chunks[1:]:
        stitched += TOK.offsets(c.text)[overlap:]
    assert len(stitched) == len(offsets)


def test_max_tokens_must_exceed_overlap() -> None:
    with pytest.raises(ValueError, match="max_tokens > overlap"):
        chunk_document(doc(TextSection("a b c")), TOK, max_tokens=10, overlap=10)
    with pytest.raises(ValueError):
        chunk_document(doc(TextSection("a b c")), TOK, max_tokens=10, overlap=-1)


def test_text_without_boundaries_is_cut_into_full_windows_sharing_the_overlap() -> None:
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=100, overlap=20)
    check_text_chunks(text, chunks, 100, 20)
    assert [c.token_end - c.token_start for c in chunks[:-1]] == [100] * (len(chunks) - 1)
    assert chunks[1].text.startswith("word80 ")


def test_window_ends_at_a_sentence_end_in_its_last_fifth() -> None:
    # sentences of 17 tokens: the first window (20 tokens) ends after the first full stop
    sentence = " ".join(["alpha"] * 16) + "."
    text = " ".join([sentence] * 10)
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=20, overlap=5)
    check_text_chunks(text, chunks, 20, 5)
    assert chunks[0].text == sentence
    shortened = [c for c in chunks[:-1] if c.token_end - c.token_start < 20]
    assert len(shortened) > 1 and all(c.text.endswith(".") for c in shortened)


def test_a_boundary_before_the_last_fifth_does_not_shorten_the_window() -> None:
    text = "Short one. " + " ".join(f"w{i}" for i in range(60))
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=20, overlap=5)
    assert chunks[0].token_end == 20


def test_line_breaks_are_boundaries_and_decimals_are_not() -> None:
    para = " ".join(["beta"] * 17)
    text = f"{para}\n{para}\n{para}"
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=20, overlap=3)
    assert chunks[0].text == para

    # "3.14" ends no sentence: the window runs to its full length
    text = " ".join(["pi", "is", "3.14", "and"] * 20)
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=20, overlap=3)
    assert chunks[0].token_end == 20


def test_chinese_text_is_cut_after_full_width_stops() -> None:
    sentence = "检索增强生成把文档切成小块再编码" + "。"  # 17 tokens, one per character
    text = sentence * 8
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=20, overlap=4)
    check_text_chunks(text, chunks, 20, 4)
    assert chunks[0].text == sentence
    shortened = [c for c in chunks[:-1] if c.token_end - c.token_start < 20]
    assert shortened and all(c.text.endswith("。") for c in shortened)


def test_mixed_chinese_and_english_keep_all_invariants() -> None:
    text = " ".join(f"第{i}段 uses e5 向量, see “引用”！Then more words here." for i in range(60))
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=64, overlap=16)
    check_text_chunks(text, chunks, 64, 16)


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(["alpha", "beta", "中", "文", ".", "。", "!", "\n", "3.5", "“", "”"]), max_size=300),
    max_tokens=st.integers(2, 40),
    data=st.data(),
)
def test_invariants_hold_for_any_text(words: list[str], max_tokens: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, max_tokens - 1))
    text = " ".join(words)
    chunks = chunk_document(doc(TextSection(text)), TOK, max_tokens=max_tokens, overlap=overlap)
    if n_tokens(text) == 0:
        assert chunks == []
    else:
        check_text_chunks(text, chunks, max_tokens, overlap)


def test_small_neighbouring_sections_share_one_chunk() -> None:
    d = doc(TextSection("First part."), TextSection("Second part."), TextSection("第三部分。"))
    chunks = chunk_document(d, TOK, max_tokens=50, overlap=5)
    assert [c.text for c in chunks] == [d.plain_text()]


def test_table_pieces_hold_whole_rows_and_all_start_with_the_header() -> None:
    rows = [[f"item {i}", f"{i * 10} yuan", "in stock"] for i in range(40)]
    table = TableSection(["Product", "Price", "Status"], rows, caption="Price list")
    d = doc(TextSection("Intro text."), table, TextSection("Outro."))
    chunks = chunk_document(d, TOK, max_tokens=40, overlap=8)

    pieces = chunks[1:-1]
    assert len(pieces) > 1
    assert chunks[0].text == "Intro text." and chunks[-1].text == "Outro."
    seen_rows: list[str] = []
    for piece in pieces:
        assert n_tokens(piece.text) <= 40
        first, second, *body = piece.text.split("\n")
        assert (first, second) == ("Price list", "Product | Price | Status")
        seen_rows += body
    assert seen_rows == [f"item {i} | {i * 10} yuan | in stock" for i in range(40)]
    # spans tile the table's tokens and keep counting through the document
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.token_start == prev.token_end


def test_a_row_bigger_than_the_budget_is_cut_with_the_header_repeated() -> None:
    long_cell = " ".join(f"note{i}" for i in range(100))
    table = TableSection(["id", "remark"], [["1", "short"], ["2", long_cell], ["3", "short"]])
    chunks = chunk_document(doc(table), TOK, max_tokens=30, overlap=5)

    assert all(c.text.startswith("id | remark\n") for c in chunks)
    assert all(n_tokens(c.text) <= 30 for c in chunks)
    parts = [c.text.removeprefix("id | remark\n") for c in chunks]
    assert parts[0] == "1 | short"
    assert parts[-1] == "3 | short"
    middle = parts[1:-1]
    assert len(middle) > 1 and middle[0].startswith("2 | note0 ")
    # every word of the long cell is in some part
    assert {f"note{i}" for i in range(100)} <= {w for p in middle for w in p.split()}


class LeadingSpaceTokenizer:
    """Like XLM-R's metaspace: a token's span takes in the whitespace (line breaks too) before it."""

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\s*\S+", text)]


def test_table_rows_stay_whole_when_tokens_carry_the_line_break() -> None:
    table = TableSection(["k", "v"], [[f"key{i}", f"value {i}"] for i in range(12)])
    chunks = chunk_document(doc(table), LeadingSpaceTokenizer(), max_tokens=14, overlap=2)
    rows: list[str] = []
    for c in chunks:
        header, *body = c.text.split("\n")
        assert header == "k | v" and all(body)
        rows += body
    assert rows == [f"key{i} | value {i}" for i in range(12)]


def test_empty_document_gives_no_chunks() -> None:
    assert chunk_document(doc(), TOK) == []
    assert chunk_document(doc(TextSection("   \n ")), TOK) == []


def test_ocr_regions_keep_their_pages_apart_and_repeat_their_heading() -> None:
    box = (0.1, 0.1, 0.9, 0.2)
    scan = LoadedDocument("scan", [
        TextSection("Handbook, edition 3", page=1),  # a text-layer page: no boxes
        TextSection("Fire drills happen monthly.", heading="Safety", page=2, boxes=(box,)),
        TextSection("Exits are marked green.", heading="Safety", page=3, boxes=(box,)),
    ], "application/pdf")
    spans = chunk_document(scan, TOK, max_tokens=64, overlap=8)
    assert [(s.text, [page for page, _ in s.locations]) for s in spans] == [
        ("Handbook, edition 3", [1]),
        ("Safety\nFire drills happen monthly.", [2]),  # a chunk under a heading opens with it
        ("Safety\nExits are marked green.", [3]),
    ]
