"""Recall paths (bm25, dense, graph), fusion, rerank and the time-budgeted hybrid search."""
