"""A repository on a local (POSIX) file system.

Writes follow the one write rule of :mod:`pgsafe.repo.storage.atomic` (which
``wal-push``'s fast path shares): a hidden temporary name in the destination folder,
fsynced (a large object also every 32 MiB as it is written, from a thread:
:mod:`pgsafe.syncer`), then renamed (or hard-linked, when overwriting is not allowed)
into place, and the folder fsynced.  Folders are 0700 and files 0600.  When pgsafe runs
as root, everything it creates takes the owner of the repository's root folder, so that
the PostgreSQL server's user (which runs ``wal-push``) and root can share one repository.

The repository is untrusted input: its owner may have planted links in it.  Every
path inside it is walked from the root folder's descriptor without following a link
(:mod:`pgsafe.repo.storage.nofollow`); a link met on the way to a key, or as the key
itself, is refused with a :class:`RepositoryError` that names it.  ``list`` neither
descends into nor shows a link (it logs a warning).  Owner and mode are set with
``fchown`` / ``fchmod`` on descriptors of files and folders this process created
itself — never through a path, and never on something that was already there.

A repository that cannot be written here (a read-only mount or snapshot, no write
permission): reading works as anywhere; a lock that would have to be created raises
:class:`RepositoryReadOnly` (exit 2: the command must write), and a failed write says
so in one line.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from pgsafe.errors import (
    NotFound,
    ObjectExists,
    OperationFailed,
    RepositoryError,
)
from pgsafe.repo.storage import atomic, nofollow
from pgsafe.repo.storage.base import LOCK_PREFIX, ObjectStat
from pgsafe.syncer import Syncer

TMP_PREFIX = atomic.TMP_PREFIX
READ_ONLY_ERRNOS = atomic.READ_ONLY_ERRNOS

log = logging.getLogger(__name__)


def _missing(exc: OSError) -> bool:
    return exc.errno in (errno.ENOENT, errno.ENOTDIR)


class PosixStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self._owner = atomic.inherited_owner(str(self.root))

    @property
    def url(self) -> str:
        return str(self.root)

    # -- helpers -------------------------------------------------------------
    def _parts(self, key: str) -> list[str]:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise ValueError(f"bad storage key {key!r}")
        return parts

    def _link_error(self, key: str, exc: nofollow.LinkInRepository) -> RepositoryError:
        where = "" if key.rstrip("/").endswith(exc.name) else f" (at {exc.name})"
        return RepositoryError(
            f"refused {key} in repository {self.root}: it is a symbolic link or lies "
            f"behind one{where}; pgsafe never follows a link inside a repository",
            hint="whoever can write the repository may have planted it: check who made it; "
            "if you moved a folder on purpose, put the folder itself (or a mount) there",
        )

    def _claim(self, fd: int, mode: int) -> None:
        """Mode and (as root) owner of a file or folder this process just created."""
        atomic.claim(fd, mode, self._owner)

    def _claim_folder(self, fd: int) -> None:
        self._claim(fd, nofollow.FOLDER_MODE)

    def _root_fd(self, *, create: bool) -> int:
        try:
            return nofollow.open_root(str(self.root))
        except FileNotFoundError:
            if not create:
                raise
        os.makedirs(self.root, mode=nofollow.FOLDER_MODE, exist_ok=True)
        return nofollow.open_root(str(self.root))

    def _folder(self, parts: list[str], *, create: bool) -> int:
        """A descriptor of the folder ``parts`` (made when ``create``); OSError else."""
        if create and not self.root.exists():
            os.makedirs(self.root, mode=nofollow.FOLDER_MODE, exist_ok=True)
        return nofollow.walk(str(self.root), parts, self._claim_folder if create else None)

    def _write_error(self, key: str, exc: OSError) -> Exception:
        if isinstance(exc, nofollow.LinkInRepository):
            return self._link_error(key, exc)
        if exc.errno == errno.ENOSPC:
            return OperationFailed(
                f"repository {self.root} is full while writing {key}",
                hint="free space or expire old backups; nothing partial was kept",
            )
        if exc.errno in READ_ONLY_ERRNOS:
            return OperationFailed(
                f"cannot write {key}: repository {self.root} is read-only here "
                f"({exc.strerror or exc})",
                hint="make the repository writable for this user, or use a writable copy",
            )
        return OperationFailed(
            f"cannot write {key} to repository {self.root}: {exc.strerror or exc}"
        )

    # -- interface -----------------------------------------------------------
    def put(self, key: str, chunks: Iterable[bytes], *, overwrite: bool = False) -> int:
        """Store ``key`` by the write rule of :mod:`pgsafe.repo.storage.atomic` (which
        ``wal-push``'s fast path shares); a large object is fsynced as it is written."""
        parts = self._parts(key)
        try:
            dfd = self._folder(parts[:-1], create=True)
        except OSError as exc:
            raise self._write_error(key, exc) from None

        def write(fd: int) -> int:
            size = 0
            syncer = Syncer()  # fsyncs a large object as it is written
            try:
                for chunk in chunks:
                    size += atomic.write_all(fd, chunk)
                    syncer.wrote(fd, key, len(chunk))
                syncer.finish()
            finally:
                syncer.abort()
            return size

        try:
            return atomic.write_new(dfd, parts[-1], write, overwrite=overwrite, owner=self._owner)
        except FileExistsError:
            raise ObjectExists(f"object {key} already exists in the repository") from None
        except OSError as exc:
            raise self._write_error(key, exc) from None
        finally:
            os.close(dfd)

    def open(self, key: str) -> BinaryIO:
        parts = self._parts(key)
        try:
            dfd = self._folder(parts[:-1], create=False)
        except nofollow.LinkInRepository as exc:
            raise self._link_error(key, exc) from None
        except OSError as exc:
            if _missing(exc):
                raise NotFound(f"object {key} is missing from the repository") from None
            raise OperationFailed(f"cannot read {key}: {exc.strerror or exc}") from None
        try:
            # O_NONBLOCK: a FIFO planted under an object's name must not hang us
            fd = nofollow.open_file(dfd, parts[-1], os.O_RDONLY | os.O_NONBLOCK)
        except nofollow.LinkInRepository as exc:
            raise self._link_error(key, exc) from None
        except OSError as exc:
            if _missing(exc):
                raise NotFound(f"object {key} is missing from the repository") from None
            raise OperationFailed(f"cannot read {key}: {exc.strerror or exc}") from None
        finally:
            os.close(dfd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RepositoryError(f"{key} in repository {self.root} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def stat(self, key: str) -> ObjectStat | None:
        parts = self._parts(key)
        try:
            dfd = self._folder(parts[:-1], create=False)
        except nofollow.LinkInRepository as exc:
            raise self._link_error(key, exc) from None
        except OSError as exc:
            if _missing(exc):
                return None
            raise
        try:
            st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        except OSError as exc:
            if _missing(exc):
                return None
            raise
        finally:
            os.close(dfd)
        if stat.S_ISLNK(st.st_mode):
            raise self._link_error(key, nofollow.LinkInRepository(parts[-1]))
        return ObjectStat(key, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> Iterator[str]:
        found: builtins.list[str] = []
        self._list_into(prefix.strip("/"), found, leftovers=False)
        yield from sorted(found)

    def leftovers(self, prefix: str = "", *, recursive: bool = True) -> Iterator[str]:
        """Keys of the temporary files (``.tmp-*``) and lock files (``.lock-*``) under
        ``prefix`` (with ``recursive=False``, in that folder alone), which :meth:`list`
        never shows (for ``expire``'s clean-up)."""
        found: builtins.list[str] = []
        self._list_into(prefix.strip("/"), found, leftovers=True, recursive=recursive)
        yield from sorted(found)

    def _list_into(
        self, prefix: str, found: builtins.list[str], *, leftovers: bool, recursive: bool = True
    ) -> None:
        parts = [p for p in prefix.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError(f"bad storage key {prefix!r}")
        try:
            fd = self._folder(parts[:-1], create=False) if parts else self._root_fd(create=False)
        except nofollow.LinkInRepository as exc:
            self._warn_link(prefix, exc.name)
            return
        except OSError as exc:
            if _missing(exc):
                return
            raise
        try:
            if parts:
                name = parts[-1]
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError as exc:
                    if _missing(exc):
                        return
                    raise
                if stat.S_ISLNK(st.st_mode):
                    self._warn_link(prefix, name)
                    return
                if stat.S_ISREG(st.st_mode):
                    if not leftovers:
                        found.append(prefix)
                    return
                if not stat.S_ISDIR(st.st_mode):
                    return
                sub = nofollow.open_dir(fd, name)
                os.close(fd)
                fd = sub
            self._scan(fd, prefix, found, leftovers, recursive)
        except nofollow.LinkInRepository as exc:
            self._warn_link(prefix, exc.name)
        finally:
            os.close(fd)

    def _scan(
        self, fd: int, rel: str, found: builtins.list[str], leftovers: bool, recursive: bool = True
    ) -> None:
        with os.scandir(fd) as entries:
            for e in entries:
                key = f"{rel}/{e.name}" if rel else e.name
                hidden = e.name.startswith((TMP_PREFIX, LOCK_PREFIX))
                if e.is_symlink():
                    self._warn_link(key, e.name)
                elif e.is_dir(follow_symlinks=False):
                    if e.name.startswith(TMP_PREFIX) or not recursive:
                        continue
                    try:
                        sub = nofollow.open_dir(fd, e.name)
                    except nofollow.LinkInRepository:
                        self._warn_link(key, e.name)
                        continue
                    except FileNotFoundError:  # removed meanwhile
                        continue
                    try:
                        self._scan(sub, key, found, leftovers, recursive)
                    finally:
                        os.close(sub)
                elif e.is_file(follow_symlinks=False) and hidden == leftovers:
                    found.append(key)

    def _warn_link(self, key: str, name: str) -> None:
        log.warning(
            "ignoring %s in repository %s: it is a symbolic link (%s); pgsafe never "
            "follows a link inside a repository",
            key,
            self.root,
            name,
        )

    def delete(self, key: str) -> None:
        parts = self._parts(key)
        chain: list[int] = []  # descriptors of the folders from the root down
        try:
            try:
                chain.append(self._root_fd(create=False))
                for name in parts[:-1]:
                    chain.append(nofollow.open_dir(chain[-1], name))
            except nofollow.LinkInRepository as exc:
                raise self._link_error(key, exc) from None
            except OSError as exc:
                if _missing(exc):
                    return
                raise self._write_error(key, exc) from None
            dfd, name = chain[-1], parts[-1]
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise self._link_error(key, nofollow.LinkInRepository(name))
                if stat.S_ISDIR(st.st_mode):
                    # descriptor-based on Linux: never follows a link inside the folder
                    shutil.rmtree(name, dir_fd=dfd)
                else:
                    os.unlink(name, dir_fd=dfd)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise self._write_error(key, exc) from None
            # prune empty parents up to the root
            for i in range(len(parts) - 1, 0, -1):
                try:
                    os.rmdir(parts[i - 1], dir_fd=chain[i - 1])
                except OSError:
                    break
        finally:
            for fd in chain:
                os.close(fd)

    def lock(self, name: str, *, wait: bool = True) -> AbstractContextManager[None]:
        """An exclusive ``flock`` on ``.lock-NAME`` in the root folder
        (:func:`pgsafe.repo.storage.posix_locks.lock`; loaded on first use: wal-push
        takes no lock)."""
        from pgsafe.repo.storage import posix_locks

        return posix_locks.lock(self, name, wait=wait)

    def remove_unheld_lock(self, key: str, *, dry_run: bool = False) -> bool:
        """Remove the lock file ``key`` when no process holds it
        (:func:`pgsafe.repo.storage.posix_locks.remove_unheld_lock`)."""
        from pgsafe.repo.storage import posix_locks

        return posix_locks.remove_unheld_lock(self, key, dry_run=dry_run)

    def remove_leftover(self, key: str, older_than: float, *, dry_run: bool = False) -> bool:
        """Remove the temporary file ``key`` (a name from :meth:`leftovers`) when its
        mtime is before ``older_than`` (a timestamp).  True when removed (with
        ``dry_run``: when it would be; nothing is removed)."""
        parts = self._parts(key)
        if not parts[-1].startswith(TMP_PREFIX):
            raise ValueError(f"not a temporary file: {key!r}")
        try:
            dfd = self._folder(parts[:-1], create=False)
        except OSError:
            return False
        try:
            st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= older_than:
                return False
            if not dry_run:
                os.unlink(parts[-1], dir_fd=dfd)
            return True
        except OSError:
            return False
        finally:
            os.close(dfd)

    def free_bytes(self) -> int | None:
        try:
            st = os.statvfs(self.root)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize
