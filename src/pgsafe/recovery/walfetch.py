"""The prefetch spool of a recovery, seen from ``recover``: where it goes, made for the
server's OS user, and summed up and removed once the recovery is over.

``recover`` names a new spool for each recovery, beside the data directory
(``<pgdata>.spool-<12 hex>``: a later recovery never sees what an earlier one
prefetched past its target), makes it (mode 0700, the server's OS user's), removes the
spools earlier recoveries into the same data directory left, and writes its path into
the restore_command (``wal-get --spool``).  A ``recover --start`` (and ``drill``,
``verify``) that waits for the end keeps the journal (:func:`hold`), then reads what it
says (:func:`collect`: segments fetched, taken from the spool, damaged in it, seconds
waited) and removes the spool, stopping the prefetcher first.  The rules of the spool
itself are :mod:`pgsafe.wal.spool`'s and :mod:`pgsafe.wal.prefetcher`'s.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from pgsafe.cluster import runas
from pgsafe.wal import prefetcher, spool

_SPOOL = re.compile(r"\.spool-[0-9a-f]{12}")


@dataclass(frozen=True)
class WalFetch:
    """How a recovery's WAL arrived (the JSON ``wal_fetch`` of ``recover``)."""

    segments_fetched: int
    segments_from_spool: int
    spool_damaged: int
    wait_s: float


def new_spool(pgdata: Path) -> Path:
    """A new spool's path beside ``pgdata`` (not made yet)."""
    real = pgdata.absolute()
    return real.parent / f"{real.name}.spool-{secrets.token_hex(6)}"


def _stale(pgdata: Path, keep: Path) -> list[Path]:
    real = pgdata.absolute()
    try:
        names = os.listdir(real.parent)
    except OSError:
        return []
    pre = real.name
    return [
        real.parent / n
        for n in names
        if n.startswith(pre) and _SPOOL.fullmatch(n[len(pre) :]) and n != keep.name
    ]


def make(pgdata: Path, path: Path) -> None:
    """Make the spool ``path`` for the server's OS user; remove the spools that earlier
    recoveries into ``pgdata`` left (their prefetchers stopped first)."""
    for old in _stale(pgdata, path):
        prefetcher.remove(str(old))
    os.mkdir(path, 0o700)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        user = runas.server_user()
        if user is not None:
            os.fchown(fd, user.uid, user.gid)
    finally:
        os.close(fd)


def hold(path: Path) -> None:
    """Keep the journal when the prefetcher exits (someone waits to read it)."""
    dfd = spool.open_spool(str(path))
    if dfd is None:
        return
    try:
        with contextlib.suppress(FileNotFoundError):  # made new: never chown what was there
            os.unlink(spool.KEEP, dir_fd=dfd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(spool.KEEP, flags, 0o600, dir_fd=dfd)
        user = runas.server_user()
        if user is not None:
            os.fchown(fd, user.uid, user.gid)
        os.close(fd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def with_shell_path(command: str, path: Path) -> str:
    """``command`` (``wal-get --spool path``) preceded by the spool's shell path
    (:func:`pgsafe.wal.spool.shell_take`): a spool hit starts no Python process.
    Without ``find`` or ``mv`` on this machine, ``command`` alone."""
    find, mv = shutil.which("find"), shutil.which("mv")
    if find is None or mv is None:
        return command
    return spool.shell_take(str(path), find, mv) + command


def collect(path: Path) -> WalFetch | None:
    """What the journal of ``path`` says; then the prefetcher is stopped and the spool
    removed (prefetched segments past a target are never left behind)."""
    prefetcher.stop(str(path))
    stats = spool.read_stats(str(path))
    prefetcher.remove(str(path))
    if stats is None:
        return None
    return WalFetch(stats.fetched, stats.from_spool, stats.damaged, round(stats.wait_s, 3))


def discard(path: Path | None) -> None:
    """Remove the spool (the prefetcher stopped first), whatever it holds."""
    if path is not None:
        prefetcher.remove(str(path))
