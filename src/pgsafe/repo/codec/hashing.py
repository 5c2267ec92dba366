"""Checksums of streams as they pass by."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator


class Hasher:
    """Wraps an iterable of chunks; after iteration holds its sha256 and size."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._h = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._h.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._h.hexdigest()


def sha256_stream(chunks: Iterable[bytes]) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for c in chunks:
        h.update(c)
        n += len(c)
    return h.hexdigest(), n
