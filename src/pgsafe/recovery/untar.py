"""Unpack pg_basebackup's tar stream into a directory, piece by piece, without copies.

pg_basebackup writes plain ustar (names under 100 bytes, no pax or GNU extensions):
directories, regular files and symbolic links.  :class:`Untar` is fed the decoded
stream in pieces as they come and writes each file's bytes straight from the piece
(``os.write`` of a memoryview slice) — no tarfile buffers, no re-joining of pieces.
With ``tarfile``, its buffering and joining took about 1.6 s of a 4.9 s extraction of
pgbench scale 100 (the profile of the change, e1fee73; its results file was never
committed: ``benchmarks/results/2026-12-02-profiles.md`` has today's timings).

Anything else in the stream (another member type, a bad header checksum, a name that
would land outside the directory, bytes after the end) is damage: it raises
:class:`~pgsafe.errors.VerificationFailed` naming what was wrong.

Every file is made durable as the extraction goes (:class:`~pgsafe.syncer.Syncer`
fsyncs in a thread), and :meth:`Untar.finish` fsyncs the folders: when it returns, the
directory is on disk, and PostgreSQL's own sync at start-up finds nothing left to write.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pgsafe.errors import VerificationFailed
from pgsafe.syncer import Syncer, fsync_directory

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_REGULAR = (b"0", b"\0", b"7")
_DIRECTORY = b"5"
_SYMLINK = b"2"


def _octal(field: bytes) -> int:
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(header: bytes) -> bool:
    stored = _octal(header[148:156])
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    return stored == unsigned


class Untar:
    """Feed it a tar stream in pieces; files appear under ``root`` as their bytes come.

    Call :meth:`finish` after the last piece: it checks that the stream ended cleanly.
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
        self._made: set[str] = {""}

    def feed(self, piece: bytes) -> None:
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
                continue
            if self._pad:
                take = min(self._pad, n - pos)
                pos += take
                self._pad -= take
                continue
            take = min(BLOCK - len(self._header), n - pos)
            self._header += view[pos : pos + take]
            pos += take
            if len(self._header) == BLOCK:
                header = bytes(self._header)
                self._header.clear()
                self._member(header)

    def finish(self) -> None:
        """Raise VerificationFailed unless the stream ended at the end of a member; then
        wait until every file and folder is durable (OperationFailed if one cannot be)."""
        if self._left or self._pad or self._header:
            self._close()
            raise VerificationFailed(f"the tar stream ends in the middle of {self._name!r}")
        if not self._ended:
            raise VerificationFailed("the tar stream has no end-of-archive marker")
        self._syncer.finish()
        for rel in sorted(self._made):
            fsync_directory(str(self.root / rel) if rel else str(self.root), self._fsync)

    def abort(self) -> None:
        """Close the file being written and stop the syncer (after an error elsewhere)."""
        self._close()
        self._syncer.abort()

    def _write(self, data: memoryview) -> None:
        n = len(data)
        while data:
            done = os.write(self._fd, data)
            data = data[done:]
        self._syncer.wrote(self._fd, self._name, n)

    def _close(self) -> None:
        if self._fd >= 0:
            self._syncer.sync_and_close(self._fd, self._name)
            self._fd = -1

    def _path(self, name: str) -> tuple[str, Path]:
        rel = name.removeprefix("./").rstrip("/")
        parts = rel.split("/")
        if not rel or rel.startswith("/") or ".." in parts or "" in parts:
            raise VerificationFailed(f"backup member {name!r} would land outside the directory")
        return rel, self.root.joinpath(*parts)

    def _parents(self, rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent in self._made:
            return
        path = self.root / parent
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        while parent not in self._made:  # every folder made on the way is fsynced at the end
            self._made.add(parent)
            parent = parent.rpartition("/")[0]

    def _member(self, header: bytes) -> None:
        if self._ended:
            if header == _ZERO_BLOCK:
                return
            raise VerificationFailed("the tar stream goes on after its end-of-archive marker")
        if header == _ZERO_BLOCK:
            self._ended = True
            return
        if not _checksum_ok(header):
            raise VerificationFailed("a tar header in the backup fails its checksum")
        name = _text(header[0:100])
        prefix = _text(header[345:500]) if header[257:262] == b"ustar" else ""
        if prefix:
            name = f"{prefix}/{name}"
        size = _octal(header[124:136])
        mode = _octal(header[100:108]) & 0o7777 or 0o600
        kind = header[156:157]
        rel, path = self._path(name)
        self._name = rel
        if kind == _DIRECTORY:
            self._parents(rel)
            path.mkdir(exist_ok=True, mode=0o700)
            os.chmod(path, mode & 0o777 or 0o700)
            self._made.add(rel)
        elif kind == _SYMLINK:
            self._parents(rel)
            os.symlink(_text(header[157:257]), path)
        elif kind in _REGULAR:
            self._parents(rel)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            if mode & 0o777 != 0o600:
                os.fchmod(self._fd, mode & 0o777)
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
