"""Unpack pg_basebackup's tar stream into a directory, piece by piece, without copies —
and never outside that directory, whatever the stream holds.

pg_basebackup writes plain ustar (names under 100 bytes, no pax or GNU extensions):
directories, regular files and, for tablespaces only, symbolic links
(``pg_tblspc/<oid>``).  :class:`Untar` is fed the decoded stream in pieces as they come
and writes each file's bytes straight from the piece (``os.write`` of a memoryview
slice) — no tarfile buffers, no re-joining of pieces.  With ``tarfile``, its buffering
and joining took about 1.6 s of a 4.9 s extraction of pgbench scale 100 (the profile of
the change, e1fee73; ``benchmarks/results/2026-12-02-profiles.md`` has today's timings).

The stream is untrusted input (it comes from a repository that others may write).  The
rules that keep every write inside the directory:

* Everything is created relative to a descriptor of the destination (``O_DIRECTORY``):
  each parent folder is opened component by component with ``O_NOFOLLOW|O_DIRECTORY``
  and ``dir_fd=`` the folder above, so a link on the way is refused, never followed.
  The descriptors of the folders in use are cached (at most :data:`MAX_DIR_FDS`).
* Files are created with ``O_CREAT|O_EXCL|O_NOFOLLOW``: a name that already exists (a
  member given twice, a link) is refused.  Modes are set with ``fchmod`` on the open
  descriptor, never through a path.
* A symbolic link member is never created.  PostgreSQL makes links only for tablespaces
  (``pg_tblspc/<oid>`` pointing to the tablespace's folder), and ``pgsafe backup``
  refuses clusters with such tablespaces (their contents would be in other tars it does
  not store), so a link in a stored base backup means the archive was not made by
  pgsafe: it is refused naming the tablespace and its target.  (A ``--tablespace-map``
  option would have nothing to map: the tablespace's files are not in the repository.)
* Names must be relative, without ``..``, ``.`` or empty components; hard links,
  devices, fifos and pax/GNU extension headers are refused.

One quirk of PostgreSQL's own is accepted: pg_basebackup 13 and 14 (``-Ft -D -``) inject
the ``backup_manifest`` last without padding it to a block, so its last byte is followed
at once by the two zero blocks that end the archive (15 rewrote that code and pads it).
Exactly that -- a top-level ``backup_manifest`` followed by 1,024 zero bytes and the end
of the stream -- ends the archive too (:meth:`Untar._unpadded_manifest_ends`).

Anything else in the stream (another member type, a header that fails its checksum or
has a field that is not a number, a name that would land outside the directory, bytes
after the end, a stream that stops in the middle of a member) is damage: it raises
:class:`~pgsafe.errors.VerificationFailed` naming the member and the offset in the tar.
A file system error raises :class:`~pgsafe.errors.OperationFailed`; nothing else
escapes.

Every file is made durable as the extraction goes (:class:`~pgsafe.syncer.Syncer`
fsyncs in a thread), and :meth:`Untar.finish` fsyncs the folders: when it returns, the
directory is on disk, and PostgreSQL's own sync at start-up finds nothing left to write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Callable
from pathlib import Path

from pgsafe.errors import OperationFailed, PgsafeError, VerificationFailed
from pgsafe.syncer import Syncer

BLOCK = 512
MAX_DIR_FDS = 64  # folder descriptors kept open between members
_ZERO_BLOCK = bytes(BLOCK)
_REGULAR = (b"0", b"\0", b"7")
_DIRECTORY = b"5"
_SYMLINK = b"2"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_TABLESPACE = re.compile(r"pg_tblspc/([0-9]+)")
_NOT_A_FOLDER = (errno.ELOOP, errno.ENOTDIR)


class _BadField(Exception):
    """A numeric header field that is not octal (turned into VerificationFailed)."""


def _octal(field: bytes) -> int:
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if any(c < 0x30 or c > 0x37 for c in text):
        raise _BadField(text)
    return int(text, 8)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(header: bytes) -> bool:
    try:
        stored = _octal(header[148:156])
    except _BadField:
        return False
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    return stored == unsigned


class Untar:
    """Feed it a tar stream in pieces; files appear under ``root`` as their bytes come.

    Call :meth:`finish` after the last piece: it checks that the stream ended cleanly.
    After an error, :meth:`abort` closes everything (it is harmless after finish).
    """

    def __init__(self, root: Path, *, fsync: Callable[[int], None] = os.fsync) -> None:
        self.root = root
        self._fsync = fsync
        self._syncer = Syncer(fsync)
        self.files = 0
        self.written = 0
        self._header = bytearray()
        self._fd = -1
        self._name = ""
        self._left = 0  # body bytes of the current member still to write
        self._pad = 0  # padding bytes after it still to skip
        self._ended = False  # the zero blocks that end the archive were seen
        self._offset = 0  # bytes of the stream consumed
        self._manifest_end = -1  # where the body of a top-level backup_manifest ended
        self._tail_dirty = False  # a non-zero byte came in the padding after it
        self._made: set[str] = {""}  # folders written into (fsynced at the end)
        try:
            root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise OperationFailed(f"cannot open {root}: {exc.strerror or exc}") from None
        self._dirs: dict[str, int] = {"": root_fd}  # folder (relative) -> open descriptor

    def feed(self, piece: bytes | bytearray | memoryview) -> None:
        view = memoryview(piece)
        pos, n = 0, len(view)
        while pos < n:
            if self._left:
                take = min(self._left, n - pos)
                self._write(view[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._close()
                    if self._name == "backup_manifest":
                        self._manifest_end = self._offset + pos
                continue
            if self._pad:
                take = min(self._pad, n - pos)
                if self._manifest_end >= 0 and any(view[pos : pos + take]):
                    self._tail_dirty = True
                pos += take
                self._pad -= take
                continue
            take = min(BLOCK - len(self._header), n - pos)
            self._header += view[pos : pos + take]
            pos += take
            if len(self._header) == BLOCK:
                header = bytes(self._header)
                self._header.clear()
                self._member(header, self._offset + pos - BLOCK)
        self._offset += n

    def finish(self) -> None:
        """Raise VerificationFailed unless the stream ended at the end of a member; then
        wait until every file and folder is durable (OperationFailed if one cannot be).
        Everything is closed when it returns or raises."""
        try:
            if (self._left or self._pad or self._header) and not self._unpadded_manifest_ends():
                raise VerificationFailed(
                    f"the tar stream ends in the middle of {self._name!r} "
                    f"(at offset {self._offset})"
                )
            if not self._ended:
                raise VerificationFailed("the tar stream has no end-of-archive marker")
            self._syncer.finish()
            for rel in sorted(self._made):
                try:
                    self._fsync(self._dir(rel, rel))
                except OSError as exc:
                    raise OperationFailed(
                        f"could not make the folder {rel or '.'!r} durable: {exc.strerror or exc}",
                        hint="check the disk and the file system, then try again",
                    ) from None
        finally:
            self.abort()

    def _unpadded_manifest_ends(self) -> bool:
        """Whether the stream is pg_basebackup 13/14's: the body of a top-level
        ``backup_manifest``, then exactly two blocks of zero bytes, then its end."""
        return (
            self._manifest_end >= 0
            and self._offset - self._manifest_end == 2 * BLOCK
            and self._ended
            and not self._left
            and not self._tail_dirty
            and not any(self._header)
        )

    def abort(self) -> None:
        """Close the file being written and stop the syncer (after an error elsewhere)."""
        self._close()
        self._syncer.abort()
        self._close_dirs(keep_root=False)

    def _write(self, data: memoryview) -> None:
        n = len(data)
        try:
            while data:
                done = os.write(self._fd, data)
                data = data[done:]
        except OSError as exc:
            raise OperationFailed(
                f"cannot write {self._name!r}: {exc.strerror or exc}",
                hint="check the free space and the file system of the data directory",
            ) from None
        self._syncer.wrote(self._fd, self._name, n)

    def _close(self) -> None:
        if self._fd >= 0:
            self._syncer.sync_and_close(self._fd, self._name)
            self._fd = -1

    def _close_dirs(self, *, keep_root: bool) -> None:
        for rel, fd in list(self._dirs.items()):
            if rel or not keep_root:
                os.close(fd)
                del self._dirs[rel]

    def _dir(self, rel: str, member: str) -> int:
        """The descriptor of folder ``rel``, made when missing; never through a link."""
        fd = self._dirs.get(rel)
        if fd is not None:
            return fd
        if "" not in self._dirs:
            raise OperationFailed("the extraction was already closed")
        parent, _, comp = rel.rpartition("/")
        pfd = self._dir(parent, member)
        try:
            fd = os.open(comp, _DIR_FLAGS, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(comp, 0o700, dir_fd=pfd)
            fd = os.open(comp, _DIR_FLAGS, dir_fd=pfd)
        except OSError as exc:
            if exc.errno in _NOT_A_FOLDER:
                raise VerificationFailed(
                    f"backup member {member!r} would be written through {rel!r}, "
                    "which is not a folder (links are never followed)"
                ) from None
            raise
        if len(self._dirs) >= MAX_DIR_FDS:
            self._close_dirs(keep_root=True)
        self._dirs[rel] = fd
        self._made.add(rel)
        return fd

    @staticmethod
    def _relative(name: str) -> str:
        rel = name.removeprefix("./").rstrip("/")
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise VerificationFailed(f"backup member {name!r} would land outside the directory")
        return rel

    def _member(self, header: bytes, offset: int) -> None:
        if self._ended:
            if header == _ZERO_BLOCK:
                return
            raise VerificationFailed(
                f"the tar stream goes on after its end-of-archive marker (at offset {offset})"
            )
        if header == _ZERO_BLOCK:
            self._ended = True
            return
        name = _text(header[0:100])
        prefix = _text(header[345:500]) if header[257:262] == b"ustar" else ""
        if prefix:
            name = f"{prefix}/{name}"
        where = f"the tar header at offset {offset} (member {name!r}"
        where += f", after {self._name!r})" if self._name else ")"
        if not _checksum_ok(header):
            raise VerificationFailed(f"{where} fails its checksum: the backup is damaged")
        try:
            size = _octal(header[124:136])
            mode = _octal(header[100:108]) & 0o777
        except _BadField as exc:
            raise VerificationFailed(
                f"{where} has a size or mode that is not a number ({exc.args[0]!r})"
            ) from None
        try:
            self._create(name, header, size, mode)
        except PgsafeError:
            raise
        except OSError as exc:
            raise OperationFailed(
                f"cannot create backup member {name!r}: {exc.strerror or exc}",
                hint="check the free space and the file system of the data directory",
            ) from None

    def _create(self, name: str, header: bytes, size: int, mode: int) -> None:
        kind = header[156:157]
        rel = self._relative(name)
        self._name = rel
        parent, _, leaf = rel.rpartition("/")
        if kind == _DIRECTORY:
            pfd = self._dir(parent, rel)
            with contextlib.suppress(FileExistsError):
                os.mkdir(leaf, 0o700, dir_fd=pfd)
            fd = self._dir(rel, rel)  # refuses a link or a file of that name
            os.fchmod(fd, mode | 0o700)  # the owner keeps its way in
        elif kind == _SYMLINK:
            target = _text(header[157:257])
            ts = _TABLESPACE.fullmatch(rel)
            if ts:
                raise VerificationFailed(
                    f"the backup holds tablespace {ts.group(1)} ({rel} -> {target!r}): "
                    "pgsafe backups never hold tablespaces outside the data directory, "
                    "so this archive was not made by pgsafe and is not restored",
                    hint="recover from another backup with --backup ID",
                )
            raise VerificationFailed(
                f"backup member {rel!r} is a symbolic link (to {target!r}); "
                "a base backup holds links only for tablespaces (pg_tblspc/OID)",
                hint="the archive was changed after pgsafe stored it: "
                "recover from another backup with --backup ID",
            )
        elif kind in _REGULAR:
            pfd = self._dir(parent, rel)
            try:
                self._fd = os.open(leaf, _FILE_FLAGS, 0o600, dir_fd=pfd)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, *_NOT_A_FOLDER, errno.EISDIR):
                    raise VerificationFailed(
                        f"backup member {rel!r} appears twice or over a folder or link"
                    ) from None
                raise
            if mode != 0o600:
                os.fchmod(self._fd, mode | 0o600)
            self.files += 1
            self.written += size
            self._left = size
            self._pad = -size % BLOCK
            if not size:
                self._close()
            return
        else:
            raise VerificationFailed(f"unexpected tar member type {kind!r} for {name!r}")
        self._pad = (size + BLOCK - 1) // BLOCK * BLOCK  # a body where none belongs: skipped
