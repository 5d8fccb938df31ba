"""Backends by name: the detector and landmark-model families each keep a table of their classes, keyed by the
class's ``name`` (what the CLI and configs say), and build one on request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar


class Named(Protocol):
    name: str


B = TypeVar("B", bound=Named)


def by_name(*backends: type[B]) -> dict[str, type[B]]:
    """{backend.name: backend} in the order given (the order help texts list them in)."""
    return {b.name: b for b in backends}


def create(backends: Mapping[str, type[B]], name: str, kind: str) -> B:
    """A new instance of the backend called ``name``; ``kind`` names the family in the error."""
    try:
        return backends[name]()
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r} (choose from {', '.join(backends)})") from None
