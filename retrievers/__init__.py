"""Recall paths (bm25, dense, graph, image), fusion, rerank and the time-budgeted hybrid search."""
