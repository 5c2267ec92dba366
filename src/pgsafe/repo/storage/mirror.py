"""Several repositories as one: every write goes to each, reads fall back.

``put`` stores the object in the first (primary) repository, then copies it from
there into each other one, so a stream is read once and every copy is the same bytes;
it succeeds only when every repository has the object (what ``wal-push`` needs before
PostgreSQL may recycle a segment).  ``open`` reads from the first repository that has
the object; :meth:`MirrorStorage.open_valid` also skips copies whose checksum is wrong.
Every fallback is noted in :attr:`MirrorStorage.notes`, so that reports can say which
repository served what.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO

from pgsafe.errors import NotFound, ObjectExists, OperationFailed, VerificationFailed
from pgsafe.repo.storage.base import ObjectStat, Storage, iter_chunks


@dataclass(frozen=True)
class Member:
    name: str
    storage: Storage


class MirrorStorage:
    def __init__(self, members: list[Member]) -> None:
        if not members:
            raise ValueError("a mirror needs at least one repository")
        self.members = members
        self.notes: list[str] = []

    @property
    def url(self) -> str:
        return self.members[0].storage.url

    @property
    def primary(self) -> Storage:
        return self.members[0].storage

    def put(self, key: str, chunks: Iterable[bytes], *, overwrite: bool = False) -> int:
        existed = False
        try:
            size = self.primary.put(key, chunks, overwrite=overwrite)
        except ObjectExists:
            existed = True
            st = self.primary.stat(key)
            size = st.size if st else 0
        for m in self.members[1:]:
            if not overwrite and m.storage.stat(key) is not None:
                continue
            try:
                with self.primary.open(key) as f:
                    m.storage.put(key, iter_chunks(f), overwrite=overwrite)
            except ObjectExists:
                continue
            except Exception as exc:
                raise OperationFailed(
                    f"{key} is stored in {self.members[0].name} but could not be copied to "
                    f"repository {m.name}: {exc}",
                    hint="fix that repository; the next attempt copies what is missing",
                ) from exc
        if existed:
            raise ObjectExists(f"object {key} already exists in the repository")
        return size

    def open(self, key: str) -> BinaryIO:
        for i, m in enumerate(self.members):
            if m.storage.stat(key) is not None:
                if i:
                    self.notes.append(
                        f"{key}: read from repository {m.name} (missing in {self.members[0].name})"
                    )
                return m.storage.open(key)
        raise NotFound(f"object {key} is missing from every repository")

    def open_valid(self, key: str, sha256: str, size: int) -> BinaryIO:
        """The first copy of ``key`` whose bytes match the catalog's checksum."""
        problems: list[str] = []
        for m in self.members:
            st = m.storage.stat(key)
            if st is None:
                problems.append(f"missing in {m.name}")
                continue
            h = hashlib.sha256()
            n = 0
            with m.storage.open(key) as f:
                for chunk in iter_chunks(f):
                    h.update(chunk)
                    n += len(chunk)
            if h.hexdigest() == sha256 and n == size:
                if problems:
                    self.notes.append(
                        f"{key}: read from repository {m.name} ({'; '.join(problems)})"
                    )
                return m.storage.open(key)
            problems.append(f"damaged in {m.name}")
        raise VerificationFailed(
            f"no valid copy of {key}: " + "; ".join(problems),
            hint="every repository's copy is missing or damaged",
        )

    def holders(self, key: str) -> list[str]:
        return [m.name for m in self.members if m.storage.stat(key) is not None]

    def stat(self, key: str) -> ObjectStat | None:
        for m in self.members:
            st = m.storage.stat(key)
            if st is not None:
                return st
        return None

    def list(self, prefix: str = "") -> Iterator[str]:
        keys: set[str] = set()
        for m in self.members:
            keys.update(m.storage.list(prefix))
        yield from sorted(keys)

    def delete(self, key: str) -> None:
        for m in self.members:
            m.storage.delete(key)

    def lock(self, name: str, *, wait: bool = True) -> AbstractContextManager[None]:
        return self.primary.lock(name, wait=wait)

    def free_bytes(self) -> int | None:
        values = [v for m in self.members if (v := m.storage.free_bytes()) is not None]
        return min(values) if values else None
