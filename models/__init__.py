"""Model providers: embedders, rerankers and chat models (offline defaults first)."""
