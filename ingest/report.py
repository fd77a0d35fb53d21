"""What an ingest or a graph build reports, as plain dataclasses that pydantic writes and reads back.

A failure is a (source, error) pair in the code and a `{"source", "error"}` object in JSON (a job's
report, `--json`); pydantic's schema of the dataclass is the one definition of both directions.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple, Self

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter


class Failure(NamedTuple):
    """A source that could not be ingested (or extracted), and why."""

    source: str
    error: str


def _from_object(value: Any) -> Any:
    return (value["source"], value["error"]) if isinstance(value, dict) else value


Failures = list[Annotated[Failure, BeforeValidator(_from_object),
                          PlainSerializer(lambda f: {"source": f[0], "error": f[1]})]]


class Report:
    """`as_dict`/`from_dict` for a report dataclass, through its pydantic schema."""

    def as_dict(self) -> dict[str, Any]:
        return _adapter(type(self)).dump_python(self, mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The inverse of `as_dict` (a job's report as the API returns it)."""
        return _adapter(cls).validate_python(data)


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    if cls not in _ADAPTERS:  # built once per class: building one compiles its schema
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]
