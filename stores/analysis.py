"""Text analysis shared by every engine that cannot segment Chinese itself.

Engines index `pretokenize(text)` with a whitespace tokenizer (and query with the same function), so
tantivy, OpenSearch without a Chinese plugin and Qdrant's BM25 sparse vectors all see the same terms.
"""

from __future__ import annotations

import rjieba


def analyze(text: str) -> list[str]:
    """Lower-cased terms: jieba's search mode (overlapping words, like IK's max_word) minus punctuation."""
    return [t.lower() for t in rjieba.cut_for_search(text) if any(ch.isalnum() for ch in t)]


def pretokenize(text: str) -> str:
    return " ".join(analyze(text))
