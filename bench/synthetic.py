"""A deterministic synthetic mixed zh/en corpus for latency benchmarks (no embedding needed)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import numpy as np

ZH = (
    "苹果 公司 手机 模型 训练 数据 检索 增强 生成 知识 图谱 向量 数据库 总部 深圳 北京 上海 研究 报告 季度 "
    "销售 市场 产品 用户 服务 平台 系统 架构 性能 优化 安全 隐私 合规 财务 预算 项目 团队 会议 总结 计划"
).split()
EN = (
    "apple company phone model training data retrieval augmented generation knowledge graph vector database "
    "headquarters research report quarter sales market product user service platform system architecture "
    "performance optimisation security privacy compliance finance budget project team meeting summary plan"
).split()


def sentence(rng: random.Random) -> str:
    zh = "".join(rng.choices(ZH, k=rng.randint(6, 14))) + "。"
    en = " ".join(rng.choices(EN, k=rng.randint(8, 16))).capitalize() + "."
    return zh + " " + en if rng.random() < 0.5 else en + " " + zh


def iter_chunk_texts(n: int, seed: int = 7) -> Iterator[str]:
    """`chunk_texts` one at a time (a million of them are ~1 GB as one list)."""
    rng = random.Random(seed)
    for _ in range(n):
        yield " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))


def chunk_texts(n: int, seed: int = 7) -> list[str]:
    return list(iter_chunk_texts(n, seed))


def queries(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choices(ZH, k=2)) if i % 2 else " ".join(rng.choices(EN, k=3))
        for i in range(n)
    ]


class HashEmbedder:
    """Random unit vectors seeded by the text: engine latency without model latency."""

    name = "bench-hash"

    def __init__(self, dim: int = 384):
        self.dim = dim

    @property
    def tokenizer(self):  # not used: the benchmark writes chunks directly
        raise NotImplementedError

    def _embed(self, texts):
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out

    embed_queries = _embed
    embed_passages = _embed


class LowRankHashEmbedder(HashEmbedder):
    """Unit vectors seeded by the text in a fixed `rank`-dimensional subspace: neighbourhoods with
    structure, as real embeddings have (HNSW finds them), where iid noise leaves HNSW lost."""

    name = "bench-lowrank"

    def __init__(self, dim: int = 384, rank: int = 32):
        super().__init__(dim)
        self.basis = np.random.default_rng(0).standard_normal((rank, dim)).astype(np.float32)

    def _embed(self, texts):
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(len(self.basis)).astype(np.float32) @ self.basis
            out[i] = v / np.linalg.norm(v)
        return out

    embed_queries = _embed
    embed_passages = _embed
