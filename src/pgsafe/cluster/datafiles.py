"""Configuration files that pgsafe writes into a data directory, never through a link.

A data directory belongs to the server's OS user, and a restored one was filled from a
repository: both are outside root's trust.  When root writes ``postgresql.auto.conf``,
``recovery.signal`` and the like, a link planted there (by that user, or in a race with
it) must not lead the write, or the change of owner that follows, anywhere else.  So the
folder is opened once without following a link, each file is opened relative to that
descriptor with ``O_NOFOLLOW``, and owner and mode are set on the open descriptor.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pgsafe.cluster.runas import OsUser
from pgsafe.errors import OperationFailed

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def _folder(datadir: Path) -> Iterator[int]:
    try:
        fd = os.open(datadir, _DIR)
    except OSError as exc:
        raise OperationFailed(
            f"cannot open the data directory {datadir}: {exc.strerror}",
            hint="it must be a folder, not a symbolic link",
        ) from None
    try:
        yield fd
    finally:
        os.close(fd)


def _write(datadir: Path, name: str, text: str, user: OsUser | None, flags: int) -> None:
    with _folder(datadir) as dfd:
        try:
            fd = os.open(
                name, flags | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd
            )
        except OSError as exc:
            raise OperationFailed(
                f"cannot write {name} in {datadir}: {exc.strerror}",
                hint="it must be a regular file, not a symbolic link",
            ) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OperationFailed(f"{name} in {datadir} is not a regular file")
            data = text.encode()
            while data:
                data = data[os.write(fd, data) :]
            if user is not None:
                os.fchown(fd, user.uid, user.gid)
        finally:
            os.close(fd)


def append(datadir: Path, name: str, text: str, user: OsUser | None) -> None:
    """Append ``text`` to the file ``name`` of ``datadir`` (made when missing)."""
    _write(datadir, name, text, user, os.O_APPEND | os.O_CREAT)


def create(datadir: Path, name: str, text: str, user: OsUser | None) -> None:
    """Write a new file ``name`` (an existing one is replaced, links never followed)."""
    remove(datadir, name)
    _write(datadir, name, text, user, os.O_CREAT | os.O_EXCL)


def exists(datadir: Path, name: str) -> bool:
    """Is there an entry ``name`` in ``datadir`` (a link counts, and is not followed)?"""
    with _folder(datadir) as dfd:
        try:
            os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True


def remove(datadir: Path, name: str) -> None:
    """Remove the entry ``name`` if it is there (unlinking never follows a link)."""
    with _folder(datadir) as dfd, contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dfd)
