"""An in-memory storage backend, for tests and for code paths that need no disk."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from pgsafe.errors import NotFound, ObjectExists
from pgsafe.repo.storage.base import ObjectStat


class MemoryStorage:
    def __init__(self, name: str = "memory") -> None:
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._mutex = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._name = name

    @property
    def url(self) -> str:
        return f"memory://{self._name}"

    def put(self, key: str, chunks: Iterable[bytes], *, overwrite: bool = False) -> int:
        key = key.strip("/")
        if not overwrite and key in self._objects:
            raise ObjectExists(f"object {key} already exists in the repository")
        data = b"".join(chunks)  # fully read before it becomes visible: atomic
        with self._mutex:
            if not overwrite and key in self._objects:
                raise ObjectExists(f"object {key} already exists in the repository")
            self._objects[key] = (data, time.time())
        return len(data)

    def open(self, key: str) -> BinaryIO:
        try:
            return io.BytesIO(self._objects[key.strip("/")][0])
        except KeyError:
            raise NotFound(f"object {key} is missing from the repository") from None

    def stat(self, key: str) -> ObjectStat | None:
        item = self._objects.get(key.strip("/"))
        return None if item is None else ObjectStat(key.strip("/"), len(item[0]), item[1])

    def list(self, prefix: str = "") -> Iterator[str]:
        p = prefix.strip("/")
        keys = [k for k in self._objects if not p or k == p or k.startswith(p + "/")]
        yield from sorted(keys)

    def delete(self, key: str) -> None:
        with self._mutex:
            self._objects.pop(key.strip("/"), None)

    @contextmanager
    def lock(self, name: str, *, wait: bool = True) -> Iterator[None]:
        with self._mutex:
            lk = self._locks.setdefault(name, threading.Lock())
        if not lk.acquire(blocking=wait):
            from pgsafe.errors import LockHeld

            raise LockHeld(f"the repository lock {name!r} is held")
        try:
            yield
        finally:
            lk.release()

    def free_bytes(self) -> int | None:
        return None

    def corrupt(self, key: str, data: bytes) -> None:
        """Test helper: replace an object's bytes behind the repository's back."""
        self._objects[key.strip("/")] = (data, time.time())
