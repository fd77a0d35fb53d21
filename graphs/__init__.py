"""The query graphs served to the CLI, the API and `langgraph dev`."""
