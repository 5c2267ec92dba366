"""Files created inside a destination folder from names that came out of a repository.

An object name is untrusted (see :mod:`pgsafe.repo.catalog_names`).  It is checked when
the catalog is decoded, and again here, where it becomes a file: the name must be
relative, without ``..``, ``.`` or empty components, and the file is created by walking
from a descriptor of the destination folder one component at a time
(``mkdir``/``open`` with ``dir_fd``, ``O_NOFOLLOW``) — no path is ever resolved from
the root, so no symbolic link, whether it was there before or appeared meanwhile, can
lead a write outside the destination.  Files are created with ``O_CREAT | O_EXCL``
(nothing is overwritten or truncated), mode 0600; folders 0700.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from pgsafe.errors import BadInput, VerificationFailed
from pgsafe.repo.catalog_names import object_name_problem

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir(path: Path) -> int:
    """A descriptor of the folder ``path`` (itself not a symbolic link)."""
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError as exc:
        raise BadInput(
            f"cannot open the folder {path}: {exc.strerror}",
            hint="name a real folder (not a symbolic link) that you can write",
        ) from None


def create_file(dir_fd: int, rel: str, *, mode: int = 0o600, dir_mode: int = 0o700) -> BinaryIO:
    """A new file ``rel`` under the folder ``dir_fd``, open for writing.

    Missing parent folders are made with ``dir_mode``; a parent that is a symbolic link
    or not a folder, a ``rel`` that could leave the folder, and a file that already
    exists are refused with :class:`VerificationFailed` (the name came from a catalog:
    such a name is damage, exit 3).
    """
    problem = object_name_problem(rel)
    if problem is not None:
        raise VerificationFailed(
            f"refusing to create a file from a catalog name: {problem}",
            hint="the repository's catalog was changed outside pgsafe",
        )
    parts = rel.split("/")
    fd = dir_fd
    try:
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_mode, dir_fd=fd)
            try:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise VerificationFailed(
                    f"refusing to write {rel!r}: {part!r} is not a folder ({exc.strerror})",
                    hint="a symbolic link or a file is in the way; nothing was written there",
                ) from None
            if fd != dir_fd:
                os.close(fd)
            fd = sub
        try:
            out = os.open(parts[-1], _FILE_FLAGS, mode, dir_fd=fd)
        except FileExistsError:
            raise VerificationFailed(
                f"refusing to write {rel!r} twice: it already exists",
                hint="two objects of the backup have the same file name; nothing was overwritten",
            ) from None
        except OSError as exc:
            raise VerificationFailed(
                f"cannot create {rel!r}: {exc.strerror}",
                hint="a symbolic link or a folder is in the way; nothing was written there",
            ) from None
    finally:
        if fd != dir_fd:
            os.close(fd)
    os.fchmod(out, mode)
    return os.fdopen(out, "wb")


def create_at(path: Path, *, mode: int = 0o600) -> BinaryIO:
    """A new file at ``path`` (a name pgsafe chose) in an existing folder, never through
    a symbolic link, never over an existing file."""
    dir_fd = open_dir(path.parent)
    try:
        return create_file(dir_fd, path.name, mode=mode)
    finally:
        os.close(dir_fd)
