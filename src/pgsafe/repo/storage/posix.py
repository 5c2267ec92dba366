"""A repository on a local (POSIX) file system.

Writes go to a hidden temporary name in the destination folder, are fsynced (a large
object every 32 MiB as it is written, from a thread: :mod:`pgsafe.syncer`), then
renamed (or hard-linked, when overwriting is not allowed) into place, and the folder
is fsynced.  Folders are 0700 and files 0600.  When pgsafe runs as root, everything it
creates takes the owner of the repository's root folder, so that the PostgreSQL
server's user (which runs ``wal-push``) and root can share one repository.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pgsafe.errors import NotFound, ObjectExists, OperationFailed, RepositoryError
from pgsafe.repo.storage.base import ObjectStat
from pgsafe.syncer import Syncer, fsync_directory

TMP_PREFIX = ".tmp-"


class PosixStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0 and self.root.is_dir():
            st = self.root.stat()
            if st.st_uid != 0:
                self._owner = (st.st_uid, st.st_gid)

    @property
    def url(self) -> str:
        return str(self.root)

    # -- helpers -------------------------------------------------------------
    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise ValueError(f"bad storage key {key!r}")
        return self.root.joinpath(*parts)

    def _own(self, path: Path) -> None:
        if self._owner is not None:
            os.chown(path, *self._owner)

    def _mkdirs(self, path: Path) -> None:
        missing: list[Path] = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir(mode=0o700)
            except FileExistsError:
                continue
            self._own(d)

    # -- interface -----------------------------------------------------------
    def put(self, key: str, chunks: Iterable[bytes], *, overwrite: bool = False) -> int:
        dest = self._path(key)
        if not overwrite and dest.exists():
            raise ObjectExists(f"object {key} already exists in the repository")
        self._mkdirs(dest.parent)
        tmp = dest.parent / f"{TMP_PREFIX}{dest.name}.{os.urandom(6).hex()}"
        size = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            syncer = Syncer()  # fsyncs a large object as it is written
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                    size += len(chunk)
                    syncer.wrote(fd, key, len(chunk))
                syncer.finish()
                os.fsync(fd)
            finally:
                syncer.abort()
                os.close(fd)
            self._own(tmp)
            if overwrite:
                os.replace(tmp, dest)
            else:
                try:
                    os.link(tmp, dest)
                except FileExistsError:
                    raise ObjectExists(f"object {key} already exists in the repository") from None
                finally:
                    tmp.unlink(missing_ok=True)
            fsync_directory(str(dest.parent))
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise OperationFailed(
                    f"repository {self.root} is full while writing {key}",
                    hint="free space or expire old backups; nothing partial was kept",
                ) from None
            raise OperationFailed(f"cannot write {key} to repository {self.root}: {exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"object {key} is missing from the repository") from None

    def stat(self, key: str) -> ObjectStat | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectStat(key, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix.strip("/") else self.root
        if base.is_file():
            yield prefix.strip("/")
            return
        if not base.is_dir():
            return
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(TMP_PREFIX)]
            rel = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith(TMP_PREFIX) or name.startswith(".lock-"):
                    continue
                found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        yield from sorted(found)

    def delete(self, key: str) -> None:
        p = self._path(key)
        try:
            p.unlink()
        except FileNotFoundError:
            return
        except IsADirectoryError:
            shutil.rmtree(p)
        # prune empty parents up to the root
        parent = p.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    @contextmanager
    def lock(self, name: str, *, wait: bool = True) -> Iterator[None]:
        self._mkdirs(self.root)
        path = self.root / f".lock-{name}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._own(path)
            flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                raise RepositoryError(
                    f"the repository lock {name!r} is held by another pgsafe process",
                    hint="wait for it to finish",
                ) from None
            yield
        finally:
            os.close(fd)

    def free_bytes(self) -> int | None:
        try:
            st = os.statvfs(self.root)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize
