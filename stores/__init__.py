"""Storage roles (metadata DB, text/BM25 index, vector index) behind small protocols."""
