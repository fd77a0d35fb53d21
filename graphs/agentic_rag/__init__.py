"""The question-answering graph: route → (chat | web_search | rewrite → narrow → retrieve) → grade →
answer | refuse, its own nodes and its runner."""
