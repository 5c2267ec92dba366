"""Locks of a local repository: an exclusive ``flock`` on ``.lock-NAME`` in its root folder,
and the removal of lock files nobody holds (``expire``'s clean-up).

Apart from :mod:`pgsafe.repo.storage.posix`, which loads it on first use: ``wal-push``
takes no lock, and its start-up loads none of this.  Like every path of the storage, a
lock file is opened from the root folder's descriptor without following a link, and
only a file this process created has its owner and mode set.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from pgsafe.errors import LockHeld, OperationFailed, RepositoryError, RepositoryReadOnly
from pgsafe.repo.storage import nofollow
from pgsafe.repo.storage.atomic import READ_ONLY_ERRNOS
from pgsafe.repo.storage.base import LOCK_PREFIX


class _Storage(Protocol):
    """What the locks need of a :class:`pgsafe.repo.storage.posix.PosixStorage`."""

    root: Path

    def _parts(self, key: str) -> list[str]: ...
    def _root_fd(self, *, create: bool) -> int: ...
    def _folder(self, parts: list[str], *, create: bool) -> int: ...
    def _claim(self, fd: int, mode: int) -> None: ...
    def _link_error(self, key: str, exc: nofollow.LinkInRepository) -> RepositoryError: ...


@contextmanager
def lock(store: _Storage, name: str, *, wait: bool = True) -> Iterator[None]:
    """An exclusive ``flock`` on ``.lock-NAME`` in the root folder.

    The lock file is created (0600, the root folder's owner) when missing, and used
    as it is when it exists — opened read-only (``flock`` needs no more), never
    through a link, and its owner and mode left alone.  When it cannot be created
    because the repository cannot be written here, :class:`RepositoryReadOnly`.
    ``expire`` removes lock files nobody holds (while holding them itself), so a
    lock taken on a file that was removed meanwhile is taken again on the new one.
    """
    fname = LOCK_PREFIX + name
    if "/" in name or not name:
        raise ValueError(f"bad lock name {name!r}")
    key = fname
    while True:
        fd = _open_lock(store, key)
        try:
            flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                raise LockHeld(
                    f"the repository lock {name!r} is held by another pgsafe process",
                    hint="wait for it to finish",
                ) from None
            if _still_there(store, key, fd):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed while we waited for it: lock the new one
    try:
        yield
    finally:
        os.close(fd)


def _open_lock(store: _Storage, key: str) -> int:
    try:
        rfd = store._root_fd(create=True)
    except OSError as exc:
        raise _lock_error(store, key, exc) from None
    try:
        for attempt in range(10):
            try:
                fd = nofollow.open_file(rfd, key, os.O_RDWR | os.O_CREAT | os.O_EXCL)
                break
            except FileExistsError:
                pass
            try:
                fd = nofollow.open_file(rfd, key, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:  # removed by expire's clean-up meanwhile
                if attempt == 9:
                    raise
                continue
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise RepositoryError(
                    f"{key} in repository {store.root} is not a regular file",
                    hint="remove it; pgsafe makes its lock files itself",
                ) from None
            return fd
        else:
            raise OperationFailed(f"cannot open the lock {key} in repository {store.root}")
        try:
            store._claim(fd, 0o600)
        except BaseException:
            os.close(fd)
            raise
        return fd
    except OSError as exc:
        raise _lock_error(store, key, exc) from None
    finally:
        os.close(rfd)


def _lock_error(store: _Storage, key: str, exc: OSError) -> Exception:
    if isinstance(exc, nofollow.LinkInRepository):
        return store._link_error(key, exc)
    if exc.errno in READ_ONLY_ERRNOS:
        return RepositoryReadOnly(
            f"repository {store.root} cannot be written here ({exc.strerror or exc}), "
            "and this command must write to it",
            hint="run it where the repository is writable; list, show, info, restore, "
            "verify, export and recover work on a read-only repository",
        )
    return OperationFailed(f"cannot lock repository {store.root}: {exc.strerror or exc}")


def _still_there(store: _Storage, key: str, fd: int) -> bool:
    """Whether ``key`` in the root folder is still the file locked through ``fd``."""
    try:
        rfd = store._root_fd(create=False)
    except OSError:
        return False
    try:
        return _same_file(rfd, key, fd)
    finally:
        os.close(rfd)


def remove_unheld_lock(store: _Storage, key: str, *, dry_run: bool = False) -> bool:
    """Remove the lock file ``key`` (a name from ``leftovers``) when no process
    holds it: taken without waiting, unlinked while held (a process that opened it
    before and locks it after sees it gone and locks a new one: :func:`lock`).
    True when removed (with ``dry_run``: when it would be; nothing is removed)."""
    parts = store._parts(key)
    if not parts[-1].startswith(LOCK_PREFIX):
        raise ValueError(f"not a lock file: {key!r}")
    try:
        dfd = store._folder(parts[:-1], create=False)
    except OSError:
        return False
    try:
        try:
            fd = nofollow.open_file(dfd, parts[-1], os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return False
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if not _same_file(dfd, parts[-1], fd):
                return False
            if not dry_run:
                os.unlink(parts[-1], dir_fd=dfd)
            return True
        finally:
            os.close(fd)
    except OSError:
        return False
    finally:
        os.close(dfd)


def _same_file(dir_fd: int, name: str, fd: int) -> bool:
    """Whether ``name`` in the folder ``dir_fd`` is (still) the file open as ``fd``."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
