"""Run PostgreSQL's ``pg_waldump`` over WAL segments and stream its lines.

One process over a folder of segments (``STARTSEG ENDSEG``) reads them in order, and
reads whole the records that cross from one segment into the next (a process per
segment loses them: it starts at the first record that begins in its segment).  Its
start-up is not what costs: on 16 pgbench segments one process took 6.6 s and one per
segment 6.2 s, on a loaded machine (``benchmarks/results/2026-12-02-mistakes.md``);
decoding and printing the records, and reading them in Python, do.  The output is read
in blocks of whole lines (:data:`BLOCK` bytes or so) while it is produced, so a gigabyte
of WAL never sits in memory, and a reader can match a block at a time in C rather than
a line at a time in Python (:mod:`pgsafe.mistakes.blocks`).

Times in pg_waldump's output are in the zone of its environment: it runs with
``TZ=UTC`` so that ``COMMIT 2024-01-15 10:30:00.123 UTC`` is always UTC.

The end of valid WAL inside the last segment (a live server's current segment, or a
recycled one) makes pg_waldump exit 1 with ``error in WAL record at ...``: that is the
ordinary end of the scan, not a failure (:attr:`Dump.reached_end`).

With ``spool`` (a path in a private folder), pg_waldump writes to that file and the
blocks are read from it as it grows: pg_waldump is then never held back by its reader
(through a pipe it is: the pipe's 64 KiB fill while the reader works on a block, and the
two take turns on one core instead of running on two;
``benchmarks/results/2026-12-03-mistakes-long-window.md``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

from pgsafe.errors import ToolFailed
from pgsafe.pg.process import Exited, Running, capture, spawn
from pgsafe.pg.programs import find_program

END_OF_WAL = "error in WAL record at"  # how pg_waldump says the valid WAL stopped
MULTI_RMGR_MAJOR = 15  # --rmgr may be given several times from PostgreSQL 15 on
BLOCK = 4 << 20  # bytes read at a time from pg_waldump's output
_WAIT = 0.005  # seconds between looks at a spool file that has not grown


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Following:
    """A file a running program writes, read as a stream: ``read`` waits for more
    while the program runs, and gives ``b""`` only once it has exited and all is read."""

    def __init__(self, f: IO[bytes], run: Running) -> None:
        self._f = f
        self._run = run
        self._done = False

    def read(self, size: int, /) -> bytes:
        parts: list[bytes] = []
        n = 0
        while n < size:
            got = self._f.read(size - n)
            if got:
                parts.append(got)
                n += len(got)
            elif self._done:
                break
            elif self._run.proc.poll() is not None:
                self._done = True  # read once more: what it wrote before exiting
            elif parts:
                break  # the reader is ahead: give it what there is
            else:
                time.sleep(_WAIT)
        return b"".join(parts)


def text_blocks(stream: Readable, size: int = BLOCK) -> Iterator[str]:
    """``stream``'s text in blocks of whole lines (each ends with a newline but maybe the
    last), of about ``size`` bytes; undecodable bytes replaced (a newline byte is never
    part of a UTF-8 sequence: a block cut after one decodes alone)."""
    tail = b""
    while chunk := stream.read(size):
        buf = tail + chunk if tail else chunk
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            tail = buf
            continue
        tail = buf[cut:]
        yield buf[:cut].decode("utf-8", errors="replace")
    if tail:
        yield tail.decode("utf-8", errors="replace")


def _env() -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "PGTZ": "UTC", "LC_ALL": "C"}


def argv(
    folder: str,
    first: str,
    last: str | None,
    *,
    major: int | None,
    rmgrs: Sequence[str] = (),
) -> list[str]:
    """The command line: ``first`` .. ``last`` (segment file names) read from ``folder``,
    only the resource managers ``rmgrs`` where the major allows several (else all)."""
    out = [find_program("pg_waldump", major), f"--path={folder}"]
    if len(rmgrs) == 1 or (rmgrs and (major or 0) >= MULTI_RMGR_MAJOR):
        out += [f"--rmgr={r}" for r in rmgrs]
    out.append(first)
    if last is not None and last != first:
        out.append(last)
    return out


@dataclass
class Dump:
    """A running pg_waldump: iterate :attr:`blocks` (of whole lines); after the ``with`` block,
    :attr:`exited` and :attr:`reached_end` say how it ended."""

    blocks: Iterator[str]
    exited: Exited | None = None
    stopped: bool = False  # the reader stopped early (:meth:`stop`): how it ended is moot
    _what: str = field(default="pg_waldump")

    def stop(self) -> None:
        """Say that the rest of the output is not wanted (pg_waldump is then killed)."""
        self.stopped = True

    @property
    def reached_end(self) -> bool:
        """Stopped at the end of the valid WAL inside its last segment (exit 1)."""
        return (
            self.exited is not None
            and self.exited.returncode == 1
            and (END_OF_WAL in self.exited.stderr)
        )

    def check(self) -> None:
        """ToolFailed unless pg_waldump read everything (or stopped at the end of WAL)."""
        assert self.exited is not None, "still running"
        if not self.stopped and not self.exited.ok and not self.reached_end:
            self.exited.check(self._what)


@contextlib.contextmanager
def dump(
    folder: str,
    first: str,
    last: str | None = None,
    *,
    major: int | None = None,
    rmgrs: Sequence[str] = (),
    spool: str | None = None,
) -> Iterator[Dump]:
    """Stream pg_waldump's records of segments ``first`` .. ``last`` in ``folder``
    (through the file ``spool``, made and removed here, when given: see the module).

    Leaving the block early kills pg_waldump (nothing is left running); on a normal end,
    :meth:`Dump.check` raises for anything but success or the end of valid WAL.
    """
    cmd = argv(folder, first, last, major=major, rmgrs=rmgrs)
    if spool is None:
        with spawn(cmd, _env()) as run:
            result = Dump(text_blocks(run.stdout), _what=f"pg_waldump {first}")
            yield result
            if result.stopped:
                run.kill()  # the caller has read enough: no need to let it run to the end
        result.exited = run.exited
        return
    flags = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(spool, flags | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(os.open(spool, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb", 0) as f:
            try:
                with spawn(cmd, _env(), stdout_fd=fd) as run:
                    os.close(fd)
                    fd = -1
                    result = Dump(text_blocks(_Following(f, run)), _what=f"pg_waldump {first}")
                    yield result
                    if result.stopped:
                        run.kill()
            finally:
                if fd >= 0:
                    os.close(fd)
        result.exited = run.exited
    finally:
        os.unlink(spool)


def dump_text(path: str, *, major: int | None, rmgrs: Sequence[str] = ()) -> str:
    """The whole output of pg_waldump over one segment file (failures tolerated: what
    was decoded before an error is returned, as the caller reads what is there)."""
    folder, name = os.path.split(path)
    try:
        got = capture(argv(folder or ".", name, None, major=major, rmgrs=rmgrs), _env())
    except OSError as exc:
        raise ToolFailed(f"cannot run pg_waldump: {exc}") from None
    return got.stdout.decode("utf-8", errors="replace")
