"""Streaming a byte source into the repository: hash, encode (compress, maybe encrypt)
with the repository's codec, store — with no temporary copy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from pgsafe.repo.catalog import StoredObject
from pgsafe.repo.codec.hashing import Hasher
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import iter_chunks


class _Counter:
    """Counts the raw bytes on their way to the encoder (only the stored bytes are hashed:
    the catalog keeps the raw size, no raw checksum)."""

    def __init__(self, chunks: Iterable[bytes], report: Callable[[int], None] | None) -> None:
        self._chunks = chunks
        self._report = report
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for c in self._chunks:
            self.size += len(c)
            if self._report is not None:
                self._report(self.size)
            yield c


def store_stream(
    repo: Repository,
    backup_id: str,
    base_name: str,
    source: BinaryIO | Iterable[bytes],
    *,
    role: str,
    report: Callable[[int], None] | None = None,
) -> StoredObject:
    """Encode ``source`` into the object ``base_name`` + the codec's suffix."""
    encoder = repo.encoder()
    name = base_name + encoder.suffix
    chunks = iter_chunks(source) if hasattr(source, "read") else source  # type: ignore[arg-type]
    raw = _Counter(chunks, report)
    stored = Hasher(encoder.encode(raw))
    repo.storage.put(repo.object_key(backup_id, name), stored)
    return StoredObject(
        name=name,
        size=stored.size,
        sha256=stored.sha256,
        raw_size=raw.size,
        compression=repo.codec_spec().label,
        role=role,
    )
