"""No compression: objects are stored as they come (no suffix)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

EXTENSION = ""


def compress(chunks: Iterable[bytes], level: int | None = None) -> Iterator[bytes]:
    for chunk in chunks:
        if chunk:
            yield chunk


def decompress(chunks: Iterable[bytes], *, what: str = "the object") -> Iterator[bytes]:
    for chunk in chunks:
        if chunk:
            yield chunk
