"""Text analysis shared by every engine that cannot segment Chinese itself.

Engines index `pretokenize(text)` with a whitespace tokenizer (and query with the same function), so
tantivy, OpenSearch without a Chinese plugin and Qdrant's BM25 sparse vectors all see the same terms.
"""

from __future__ import annotations

import re

import rjieba

# a character for which str.isalnum() holds (re's \w is exactly that plus "_"): one C call per term
# instead of a generator over its characters (analysis is most of tantivy indexing time)
_ALNUM = re.compile(r"[^\W_]")


def analyze(text: str) -> list[str]:
    """Lower-cased terms: jieba's search mode (overlapping words, like IK's max_word) minus punctuation."""
    search = _ALNUM.search
    return [t.lower() for t in rjieba.cut_for_search(text) if search(t)]


def pretokenize(text: str) -> str:
    return " ".join(analyze(text))
