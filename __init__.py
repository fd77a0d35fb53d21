"""Sieve: agentic RAG orchestration on LangGraph."""

__version__ = "0.1.0"
