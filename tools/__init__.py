"""Retrieval, web and NL2SQL exposed as tools for the graph and for other agents."""
