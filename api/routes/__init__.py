"""The HTTP routes: one router per resource. The serving machinery they share lives beside this folder, in `api/`."""
