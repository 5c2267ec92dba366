"""Run one PostgreSQL program while its output is consumed: spawn, stream, drain, reap.

Every program pgsafe streams from (``pg_dump``, ``pg_dumpall``, ``pg_basebackup``)
goes through :func:`spawn`:

* the child reads nothing (stdin is ``/dev/null``) and gets its password through the
  environment only (build ``argv`` and ``env`` with :func:`pgsafe.pg.runner.tool_env`:
  a password never appears on a command line, where ``ps`` would show it);
* its stderr is drained by a thread into a bounded buffer (the first
  ``STDERR_HEAD`` bytes and the last ``STDERR_TAIL``), so a chatty program can neither
  block on a full pipe nor fill memory;
* if the body of the ``with`` block raises, the child is killed and reaped before the
  exception goes on, so a half-consumed stream is never taken for a whole one and no
  zombie or orphan is left behind;
* once it has exited, :attr:`Running.exited` holds its exit status and stderr, and
  :meth:`Exited.check` turns a failure into :class:`~pgsafe.errors.ToolFailed` with
  the program's first error line.

Programs fed on stdin go through :mod:`pgsafe.pg.pipe`; short ones whose output is
read whole through :func:`capture` (or :func:`pgsafe.pg.runner.run`); short ones whose
output is not read (``pg_ctl``, ``initdb``, ``pg_isready``) through :func:`run_short`.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TypedDict

from pgsafe.errors import ToolFailed
from pgsafe.pg.runner import first_error_line

STDERR_HEAD = 1 << 20  # stderr kept from the start (first_error_line looks there first)
STDERR_TAIL = 64 << 10  # and from the end, once the head is full
_DRAIN_READ = 64 << 10


class RunAs(TypedDict, total=False):
    """The :mod:`subprocess` keyword arguments that run a child as another OS user."""

    user: int
    group: int
    extra_groups: list[int]
    env: dict[str, str]
    cwd: str


@dataclass(frozen=True)
class Exited:
    """How a program ended: its exit status and (bounded) stderr."""

    returncode: int
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def first_error(self) -> str:
        """The most telling line of stderr (see :func:`first_error_line`)."""
        return first_error_line(self.stderr)

    def check(self, what: str) -> None:
        """Raise ToolFailed (``what failed (exit N): first error line``) unless it succeeded."""
        if self.returncode != 0:
            raise ToolFailed(f"{what} failed (exit {self.returncode}): {self.first_error()}")


@dataclass(frozen=True)
class Captured:
    """A program's whole stdout, with how it ended."""

    stdout: bytes
    exited: Exited


class _Drain:
    """Reads a stream to its end in a thread, keeping its head and its tail."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._head = bytearray()
        self._tail = bytearray()
        self._skipped = 0
        self._thread = threading.Thread(target=self._run, name="pg-stderr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self._stream.read(_DRAIN_READ):
                room = STDERR_HEAD - len(self._head)
                self._head += chunk[:room]
                self._tail += chunk[room:]
                if len(self._tail) > STDERR_TAIL:
                    cut = len(self._tail) - STDERR_TAIL
                    self._skipped += cut
                    del self._tail[:cut]

    def text(self) -> str:
        """Everything kept (call after :meth:`join`)."""
        data = bytes(self._head)
        if self._skipped:
            data += f"\n[... {self._skipped} bytes of stderr skipped ...]\n".encode()
        return (data + bytes(self._tail)).decode(errors="replace")

    def join(self) -> None:
        self._thread.join()
        self._stream.close()


class Running:
    """A program started by :func:`spawn`: its process, its stdout and, once it has
    exited, :attr:`exited`."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._exited: Exited | None = None

    @property
    def stdout(self) -> IO[bytes]:
        """The program's stdout (only when spawned with ``stdout=True``)."""
        assert self.proc.stdout is not None, "spawned with stdout=False"
        return self.proc.stdout

    def kill(self) -> None:
        """Kill the program now (idempotent; :func:`spawn` reaps it).  Call this before
        joining a thread that may be blocked reading its stdout."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    @property
    def exited(self) -> Exited:
        """How it ended (after the ``with`` block of :func:`spawn`)."""
        assert self._exited is not None, "the program is still running"
        return self._exited


@contextlib.contextmanager
def spawn(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    *,
    stdout: bool = True,
    stdout_fd: int | None = None,
    popen_kwargs: RunAs | None = None,
) -> Iterator[Running]:
    """Start ``argv``; the body consumes :attr:`Running.stdout` (or, with ``stdout_fd``,
    its output goes to that file descriptor: the caller closes it).

    On leaving the block normally the program is waited for and :attr:`Running.exited`
    set (the caller decides what a failure means, often with :meth:`Exited.check`); if
    the body raises, the program is killed and reaped first.  ``popen_kwargs``: the OS
    user to run as and a working folder (its ``env`` applies when ``env`` is None).
    """
    run_as: RunAs = popen_kwargs or {}
    out = stdout_fd if stdout_fd is not None else subprocess.PIPE if stdout else subprocess.DEVNULL
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else run_as.get("env"),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.PIPE,
        user=run_as.get("user"),
        group=run_as.get("group"),
        extra_groups=run_as.get("extra_groups"),
        cwd=run_as.get("cwd"),
    )
    assert proc.stderr is not None
    drain = _Drain(proc.stderr)
    running = Running(proc)
    try:
        yield running
    except BaseException:
        running.kill()
        proc.wait()
        drain.join()
        if proc.stdout is not None:
            proc.stdout.close()
        raise
    # the body has read what it wanted: a program still writing now gets SIGPIPE
    # (and fails) instead of blocking on a pipe no one reads
    if proc.stdout is not None:
        proc.stdout.close()
    rc = proc.wait()
    drain.join()
    running._exited = Exited(rc, drain.text())


def capture(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    *,
    popen_kwargs: RunAs | None = None,
) -> Captured:
    """Run ``argv`` to its end and return its whole stdout with how it ended."""
    with spawn(argv, env, popen_kwargs=popen_kwargs) as run:
        out = run.stdout.read()
    return Captured(out, run.exited)


def run_short(
    argv: Sequence[str],
    *,
    timeout: float,
    popen_kwargs: RunAs | None = None,
) -> Exited:
    """Run a short program whose output is not read (``pg_ctl``, ``initdb``,
    ``pg_isready``) to its end: stdin is ``/dev/null``, stdout discarded, stderr kept
    for :meth:`Exited.first_error`.  After ``timeout`` seconds it is killed and reaped,
    and :class:`subprocess.TimeoutExpired` goes on.  ``popen_kwargs``: as
    :func:`pgsafe.cluster.runas.popen_kwargs` makes them, to run it as another user."""
    run_as: RunAs = popen_kwargs or {}
    proc = subprocess.run(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, errors="replace", timeout=timeout, check=False,
        env=run_as.get("env"), user=run_as.get("user"), group=run_as.get("group"),
        extra_groups=run_as.get("extra_groups"), cwd=run_as.get("cwd"),
    )  # fmt: skip
    return Exited(proc.returncode, proc.stderr)
