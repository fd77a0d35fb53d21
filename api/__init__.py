"""The HTTP API: one router per resource, the dependencies they share, and the app's runtime state."""
