"""One module per node of the question-answering graph (the nodes it shares with deep research are in
`graphs/shared/nodes`)."""
