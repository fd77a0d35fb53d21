"""Loaders, chunking and indexing of documents into the metadata DB, BM25 and vectors."""
