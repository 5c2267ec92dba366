"""Who writes a base backup's files: as root, a child process running as the server's
OS user.

Why.  A base backup comes from a repository, and whoever can write the repository (the
``postgres`` OS user, whose ``archive_command`` writes it; an account that got in through
``COPY ... TO PROGRAM``; anyone with the bucket's keys) chooses every name, link and mode
in it.  :mod:`pgsafe.recovery.untar` checks them all, but when root does the writing, a
check it misses is a write, chown or chmod anywhere on the machine.  The files belong to
the server's OS user anyway (PostgreSQL refuses to run as root, and pgsafe runs the
server as that user, :func:`pgsafe.cluster.runas.server_user`), and that user is the
one who could already write the repository: writing them as that user means a missed
check gains an attacker nothing it did not have.  pgBackRest and Barman get the same
property by running entirely as their own users.

How.  :func:`open_writer` forks before the extraction starts any thread (the decoding
thread, the restore_command probe): the child sets its groups, group and user
(``setgroups``/``setgid``/``setuid``, the same switch ``subprocess`` makes for the
server), closes every descriptor it inherited except its two pipes, and runs
:class:`~pgsafe.recovery.untar.Untar` on the decoded tar stream it reads from a pipe.
It reports one JSON line on a second pipe: the bytes written, or the error (message,
hint, exit code), which the parent raises as the same kind of
:class:`~pgsafe.errors.PgsafeError`.  A fork rather than a new interpreter: the child
needs no import (it runs code already loaded), so nothing has to be installed where the
server's user can read it, and it costs about a millisecond.

What stays root: reading the repository (root may be the only one holding the
credentials, the age identity, or read access), decoding and hashing the stored
object, and — after the child has finished — writing the recovery settings and
giving ownership of what root wrote.  Decoding is done by the C libraries of the codecs
on bytes in memory; no name from the repository is used as a path by root.

Cost.  The decoded stream crosses one pipe (1 MiB pipe buffer), which runs in parallel
with the writes and the decompression (two processes instead of two threads sharing one
GIL).  Measured on pgbench scale 10 (188 MB restored, 2 busy cores, 6 alternating runs
of ``recover --latest`` each): median 2.25 s before, 1.97 s after — the same within the
noise of a shared machine.

Not root, or root asked to run the server as root: the calling process writes (there is
no one less privileged to hand it to).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue  # noqa: F401  (the child's syncer needs it; imported before the fork)
import threading  # noqa: F401  (likewise)
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn, Protocol

from pgsafe.cluster.runas import OsUser
from pgsafe.errors import BadInput, OperationFailed, PgsafeError, VerificationFailed
from pgsafe.recovery.untar import Untar

PIPE_SIZE = 1 << 20  # the data pipe's buffer (F_SETPIPE_SZ): fewer switches per MiB
READ_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


Decompress = Callable[..., Iterator[bytes]]


class TarWriter(Protocol):
    """Takes the tar stream; :meth:`finish` returns the file bytes written.

    ``compressed``: :meth:`feed` takes the stream still compressed (decrypted, but not
    decompressed), and the writer decompresses it itself.
    """

    compressed: bool

    def feed(self, piece: bytes) -> None: ...

    def finish(self) -> int: ...

    def abort(self) -> None: ...


class _InProcess:
    compressed = False

    def __init__(self, dest: Path) -> None:
        self._untar = Untar(dest)

    def feed(self, piece: bytes) -> None:
        self._untar.feed(piece)

    def finish(self) -> int:
        self._untar.finish()
        return self._untar.written

    def abort(self) -> None:
        self._untar.abort()


def open_writer(dest: Path, user: OsUser | None, decompress: Decompress | None = None) -> TarWriter:
    """A writer of ``dest`` (an existing folder ``user`` can write): as ``user`` in a
    child process when we are root and ``user`` is someone else, else in this process.
    Open it before starting threads.

    ``decompress`` (a codec's ``f(chunks, what=...)``, its module already imported):
    the child decompresses the stream itself — the untrusted bytes are then parsed
    unprivileged too, and a quarter of the bytes cross the pipe.
    """
    if user is None or user.uid == os.geteuid() or os.geteuid() != 0:
        return _InProcess(dest)
    return _Child(dest, user, decompress)


class _Child:
    def __init__(self, dest: Path, user: OsUser, decompress: Decompress | None = None) -> None:
        self._user = user
        self.compressed = decompress is not None
        data_r, data_w = os.pipe()
        report_r, report_w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(data_w, _F_SETPIPE_SZ, PIPE_SIZE)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            _child(dest, user, data_r, report_w, decompress)
        os.close(data_r)
        os.close(report_w)
        self._pid = pid
        self._data = data_w
        self._report = report_r
        self._outcome: dict[str, object] | None = None

    def feed(self, piece: bytes) -> None:
        view = memoryview(piece)
        try:
            while view:
                n = os.write(self._data, view)
                view = view[n:]
        except BrokenPipeError:  # the child stopped: it says why
            self._raise(self._wait())
            raise OperationFailed("the extraction process stopped reading") from None

    def finish(self) -> int:
        outcome = self._wait()
        self._raise(outcome)
        return int(str(outcome.get("written", 0)))

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._wait()

    def _wait(self) -> dict[str, object]:
        if self._outcome is not None:
            return self._outcome
        if self._data >= 0:
            os.close(self._data)
            self._data = -1
        chunks = []
        while True:
            chunk = os.read(self._report, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self._report)
        _, status = os.waitpid(self._pid, 0)
        try:
            doc = json.loads(b"".join(chunks) or b"null")
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            how = (
                f"was killed by signal {os.WTERMSIG(status)}"
                if os.WIFSIGNALED(status)
                else f"exited with {os.waitstatus_to_exitcode(status)} without a report"
            )
            doc = {"exit_code": 1, "message": f"the extraction process {how}"}
        self._outcome = doc
        return doc

    def _raise(self, outcome: dict[str, object]) -> None:
        if outcome.get("ok"):
            return
        code = outcome.get("exit_code")
        message = str(outcome.get("message", "the extraction failed"))
        hint = outcome.get("hint")
        kind: type[PgsafeError] = OperationFailed
        if code == 3:
            kind = VerificationFailed
        elif code == 2:
            kind = BadInput
        raise kind(message, hint=str(hint) if hint else None)


def _close_inherited(keep: tuple[int, ...]) -> None:
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, max(low, os.sysconf("SC_OPEN_MAX")))


def _pipe_chunks(data_fd: int) -> Iterator[bytes]:
    while chunk := os.read(data_fd, READ_SIZE):
        yield chunk


def _child(
    dest: Path, user: OsUser, data_fd: int, report_fd: int, decompress: Decompress | None
) -> NoReturn:
    code = 1
    report: dict[str, object]
    try:
        _close_inherited((data_fd, report_fd))
        os.setgroups(sorted(user.groups))
        os.setgid(user.gid)
        os.setuid(user.uid)
        if os.getuid() != user.uid or os.geteuid() != user.uid:
            raise OperationFailed(f"could not become the OS user {user.name!r}")
        untar = Untar(dest)
        try:
            if decompress is not None:
                for piece in decompress(_pipe_chunks(data_fd), what="the base backup"):
                    untar.feed(piece)
            else:
                buf = bytearray(READ_SIZE)
                view = memoryview(buf)
                while n := os.readv(data_fd, [buf]):
                    untar.feed(view[:n])
            untar.finish()
        finally:
            untar.abort()
        report = {"ok": True, "written": untar.written, "files": untar.files}
        code = 0
    except PgsafeError as exc:
        report = {"exit_code": exc.exit_code, "message": exc.message, "hint": exc.hint}
    except BaseException as exc:  # reported, never a traceback
        report = {
            "exit_code": 1,
            "message": f"the extraction as {user.name!r} failed: {type(exc).__name__}: {exc}",
        }
    try:
        data = memoryview(json.dumps(report).encode())
        while data:
            data = data[os.write(report_fd, data) :]
    finally:
        os._exit(code)
