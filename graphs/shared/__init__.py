"""What the query graphs share: runtime context and wiring, state, the LLM, text and grading, and the
nodes both graphs run (retrieve, narrow, grade)."""
