"""Retrieval metrics, dataset readers and the `sieve eval` runners."""
