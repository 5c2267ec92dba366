"""The storage interface every backend implements.

Keys are ``/``-separated relative paths.  ``put`` is atomic: a reader sees either no
object or the whole object, never a part; an interrupted ``put`` leaves nothing
visible.  ``put(..., overwrite=False)`` refuses to replace an existing object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from pgsafe.repo import marker

# the name of a lock's object in every backend (a leftover that list() never shows)
LOCK_PREFIX = ".lock-"


@dataclass(frozen=True)
class ObjectStat:
    key: str
    size: int
    mtime: float


@runtime_checkable
class Storage(Protocol):
    """Put a stream atomically, get a stream, list, stat, delete, lock."""

    @property
    def url(self) -> str: ...

    def put(self, key: str, chunks: Iterable[bytes], *, overwrite: bool = False) -> int:
        """Store ``chunks`` under ``key`` atomically; return the number of bytes stored.

        Raises :class:`pgsafe.errors.ObjectExists` when ``key`` exists and not ``overwrite``.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object; :class:`NotFound` when missing."""
        ...

    def stat(self, key: str) -> ObjectStat | None: ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix`` (recursively), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove one object; removing a missing object is not an error."""
        ...

    def lock(self, name: str, *, wait: bool = True) -> AbstractContextManager[None]:
        """An exclusive lock shared by every process using this repository."""
        ...

    def free_bytes(self) -> int | None: ...


def read_all(storage: Storage, key: str, limit: int | None = None) -> bytes:
    """The whole object; with ``limit``, :class:`~pgsafe.errors.VerificationFailed` when
    it is larger (a record read from a repository is untrusted: a huge one is damage, not
    a reason to fill memory)."""
    with storage.open(key) as f:
        if limit is None:
            return f.read()
        data = f.read(limit + 1)
    if len(data) > limit:
        from pgsafe.errors import VerificationFailed

        raise VerificationFailed(
            f"{key} in {storage.url} is damaged: larger than {limit} bytes",
            hint="a record pgsafe wrote is never that large; restore it from a copy",
        )
    return data


# markers, server records, restore points, history records (wal-push's fast path reads
# the first two with the same bound: it is defined with the marker's rules)
RECORD_LIMIT = marker.RECORD_LIMIT
MANIFEST_LIMIT = 64 << 20  # a catalog entry (fingerprints of many tables)


def iter_chunks(stream: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        yield chunk
