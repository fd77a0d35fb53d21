"""`python -m sieve.cli`, as the `sieve` script."""

from sieve.cli import app

app()
