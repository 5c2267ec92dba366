"""Walk a local repository without ever following a symbolic link inside it.

Whoever can write a repository (the PostgreSQL server's OS user, to which a repository
made by root is handed) may plant a link in it: ``.lock-main-ids -> /etc/shadow``,
``main -> /etc``.  Opening paths would follow such a link, and root would write, chown
or delete the file behind it.  So every path inside a repository is opened one
component at a time from a descriptor of the folder above it (``openat``), with
``O_NOFOLLOW``: a link as a folder on the way or as the object itself is found, never
followed, and reported as :class:`LinkInRepository`.

The repository's root folder itself is the one path opened by name: the user named it
(``--repo``), and it may well be a link the user made.

Only built-in modules (``errno``, ``os``, ``stat``) are imported: ``wal-push``'s fast
path (:mod:`pgsafe.wal.fastpush`) walks with the same rule, and writes with
:mod:`pgsafe.repo.storage.atomic` as the posix storage does.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FOLDER_MODE = 0o700


class LinkInRepository(OSError):
    """A component of a path inside the repository is a symbolic link."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.ELOOP, "a symbolic link", name)
        self.name = name


def is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _explain(dir_fd: int, name: str, exc: OSError) -> OSError:
    """``exc`` from opening ``name``: a :class:`LinkInRepository` when ``name`` is a link
    (``O_DIRECTORY|O_NOFOLLOW`` reports a link as ENOTDIR, ``O_NOFOLLOW`` as ELOOP)."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST) and is_link(dir_fd, name):
        return LinkInRepository(name)
    return exc


def open_root(root: str) -> int:
    """A descriptor of the repository's root folder (named by the user: followed)."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_dir(dir_fd: int, name: str, made: Callable[[int], None] | None = None) -> int:
    """The folder ``name`` inside ``dir_fd``, never through a link.  With ``made``, a
    missing folder is created (0700) and ``made`` is called with its descriptor — only
    for a folder this call created, so that owner and mode are set on it alone — and
    the folder above is fsynced, so that the new folder's entry is as durable as what
    will be written in it (:mod:`pgsafe.repo.storage.atomic`)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if made is None:
            raise
    except OSError as exc:
        raise _explain(dir_fd, name, exc) from None
    try:
        os.mkdir(name, FOLDER_MODE, dir_fd=dir_fd)
        created = True
    except FileExistsError:  # made meanwhile by another writer
        created = False
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _explain(dir_fd, name, exc) from None
    if created:
        try:
            made(fd)
            os.fsync(dir_fd)
        except BaseException:
            os.close(fd)
            raise
    return fd


def walk(root: str, parts: Sequence[str], made: Callable[[int], None] | None = None) -> int:
    """A descriptor of the folder ``root/parts[0]/parts[1]/...``, each component opened
    by :func:`open_dir` from the one above it; the caller closes it."""
    fd = open_root(root)
    try:
        for name in parts:
            nxt = open_dir(fd, name, made)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(dir_fd: int, name: str, flags: int, mode: int = 0o600) -> int:
    """``os.open`` of ``name`` in ``dir_fd`` with ``O_NOFOLLOW``; a link raises
    :class:`LinkInRepository`."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        raise _explain(dir_fd, name, exc) from None
