"""Streaming a byte source into the repository: hash, compress, store — no temp copy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from pgsafe.repo.catalog import StoredObject
from pgsafe.repo.codec import zstd
from pgsafe.repo.codec.hashing import Hasher
from pgsafe.repo.storage.base import Storage, iter_chunks


def _counting(chunks: Iterable[bytes], report: Callable[[int], None] | None) -> Iterator[bytes]:
    done = 0
    for c in chunks:
        done += len(c)
        if report is not None:
            report(done)
        yield c


def store_stream(
    storage: Storage,
    key: str,
    name: str,
    source: BinaryIO | Iterable[bytes],
    *,
    level: int,
    role: str,
    report: Callable[[int], None] | None = None,
) -> StoredObject:
    """Compress ``source`` with zstd into ``key``; return its catalog entry."""
    chunks = iter_chunks(source) if hasattr(source, "read") else source  # type: ignore[arg-type]
    raw = Hasher(_counting(chunks, report))
    stored = Hasher(zstd.compress(raw, level))
    storage.put(key, stored)
    return StoredObject(
        name=name,
        size=stored.size,
        sha256=stored.sha256,
        raw_size=raw.size,
        compression="zstd",
        role=role,
    )


def open_object(storage: Storage, key: str) -> Iterator[bytes]:
    """The decompressed content of a stored object, as chunks."""
    with storage.open(key) as f:
        yield from zstd.decompress(f)
