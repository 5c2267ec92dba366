"""How a file enters a local repository: atomically, durably, owned right (lean).

The one write rule of the posix storage (:meth:`PosixStorage.put
<pgsafe.repo.storage.posix.PosixStorage.put>`) and of ``wal-push``'s fast path
(:mod:`pgsafe.wal.fastpush`):

1. the name must not be a link (refused) nor, unless overwriting, taken;
2. the bytes go to a hidden temporary name (``.tmp-<name>.<random>``, mode 0600) in
   the destination folder, opened without following a link;
3. the temporary file is fsynced and closed;
4. it is hard-linked to the name (which never replaces anything: a name taken
   meanwhile fails) or, when overwriting, renamed over it;
5. the folder is fsynced: the new entry is durable before the caller reports success.

The temporary name is removed on every failure.  A failure after step 4 (the folder's
fsync) raises :class:`NotSynced`: the object is in place but not yet known durable,
which is an error, never a reason to write it again elsewhere.  A folder made on the
way is made durable in its parent by :func:`pgsafe.repo.storage.nofollow.open_dir`.

Ownership: when pgsafe runs as root in a repository whose root folder belongs to
another user (the PostgreSQL server's, which runs ``wal-push``), what it creates is
handed to that user (:func:`inherited_owner`, :func:`claim`) — through descriptors of
what this process created, never a path.
"""

from __future__ import annotations

import errno
import os
import stat

from pgsafe.repo.storage import nofollow

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from collections.abc import Callable

TMP_PREFIX = ".tmp-"
FILE_MODE = 0o600
FOLDER_MODE = nofollow.FOLDER_MODE
# errors that mean "this process cannot write the repository" (EPERM: chattr +i)
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class NotSynced(OSError):
    """The object is in place, but its folder could not be fsynced."""


def temp_name(name: str) -> str:
    """The hidden temporary name ``name`` is written under first."""
    return f"{TMP_PREFIX}{name}.{os.urandom(6).hex()}"


def inherited_owner(root: str) -> tuple[int, int] | None:
    """``(uid, gid)`` that new files and folders in the repository at ``root`` must be
    given: its root folder's owner, when we are root and that owner is another user;
    else None (what we create is ours)."""
    if os.geteuid() != 0:
        return None
    try:
        st = os.stat(root)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid == 0:
        return None
    return st.st_uid, st.st_gid


def claim(fd: int, mode: int, owner: tuple[int, int] | None) -> None:
    """Mode and (with ``owner``) owner of a file or folder this process just created."""
    os.fchmod(fd, mode)
    if owner is not None and os.fstat(fd).st_uid == os.geteuid():
        os.fchown(fd, *owner)


def write_all(fd: int, data: bytes | memoryview) -> int:
    """Write all of ``data`` to ``fd``; its length."""
    view = memoryview(data)
    total = len(view)
    while view:
        view = view[os.write(fd, view) :]
    return total


def write_new(
    dir_fd: int,
    name: str,
    write: Callable[[int], int],
    *,
    overwrite: bool = False,
    owner: tuple[int, int] | None = None,
) -> int:
    """Store ``name`` in the folder ``dir_fd`` by the rule of the module docstring;
    ``write(fd)`` writes the content to the temporary file and returns its size, which
    is returned.

    Raises :class:`FileExistsError` when the name is taken (and not ``overwrite``),
    :class:`~pgsafe.repo.storage.nofollow.LinkInRepository` when it is a link,
    :class:`NotSynced` when only the final fsync of the folder failed, and any other
    ``OSError`` (or what ``write`` raises) with nothing left behind.
    """
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISLNK(st.st_mode):
            raise nofollow.LinkInRepository(name)
        if not overwrite:
            raise FileExistsError(errno.EEXIST, "already exists", name)
    tmp = temp_name(name)
    fd = nofollow.open_file(dir_fd, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    placed = False
    try:
        try:
            claim(fd, FILE_MODE, owner)
            size = write(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            placed = True
        else:
            try:
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            except FileExistsError:
                if nofollow.is_link(dir_fd, name):
                    raise nofollow.LinkInRepository(name) from None
                raise
    finally:
        if not placed:
            try:  # noqa: SIM105  (contextlib is one more import for the fast path)
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        raise NotSynced(exc.errno, exc.strerror, name) from None
    return size
