"""Retrieval the way a query runs it, for tests that ingest into a real `Stack` and search one path or several."""

from __future__ import annotations

import asyncio

from PIL import Image, ImageDraw

from sieve.retrievers.hybrid import HybridRetriever
from sieve.retrievers.types import RetrievalResult
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter


def search(stack: Stack, query: str, flt: SearchFilter, paths: list[str], top_k: int = 5) -> RetrievalResult:
    """One retrieval over the knowledge base's stored profile, limited to `paths`, on a fresh retriever."""
    retriever = HybridRetriever(stack)
    profile = retriever.load_profile(flt.kb).merged(paths=paths, top_k=top_k)
    try:
        return asyncio.run(retriever.retrieve(query, flt, profile=profile))
    finally:
        retriever.close()


def picture(shape: str, color: str) -> Image.Image:
    """A picture without text: a coloured circle or square on white."""
    image = Image.new("RGB", (160, 120), "white")
    draw = ImageDraw.Draw(image)
    (draw.ellipse if shape == "circle" else draw.rectangle)((40, 20, 120, 100), fill=color)
    return image
