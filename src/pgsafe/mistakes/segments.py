"""Which WAL segments a scan reads, and putting them in a folder for pg_waldump.

Archived segments come from the repository (decoded by :func:`pgsafe.wal.get.get`:
every codec, encrypted ones included, damage refused); the live server's segments
not archived yet are copied from its ``pg_wal`` (read without following a link in
place of a segment).  A scan reads batches of ``BATCH`` segments, one after another,
each batch starting with the last segment of the one before: a record that crosses
from one batch into the next is read whole in the next (records already seen are
skipped by LSN).  The next batch is fetched into a second folder while the current one
is read: at most ``2 * BATCH`` segments are on disk, with the current batch's pg_waldump
output (a spool file read as it grows, :func:`pgsafe.pg.waldump.dump`; about 1.1 times
the batch's size for busy pgbench WAL).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from pgsafe.errors import OperationFailed
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout, names
from pgsafe.wal.get import get

BATCH = 16  # segments per pg_waldump run: 2 x 256 MiB of temporary space (16 MiB segments)
_COPY = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where one segment is read from: the archive, or the live ``pg_wal`` folder."""

    timeline: int
    segno: int
    live_folder: str | None = None
    begin: int = 0  # records of this timeline before this LSN belong to its parent
    end: int | None = None  # and from this LSN on, to a timeline that left it


def archived(repo: Repository, segment_size: int) -> dict[int, set[int]]:
    """Archived segment numbers per timeline."""
    out: dict[int, set[int]] = {}
    for key in repo.storage.list(layout.wal_prefix(repo.server)):
        fname = layout.name_of_key(key)
        wal = names.parse(fname) if fname else None
        if wal is not None and wal.kind == "segment":
            out.setdefault(wal.timeline, set()).add(names.segment_number(wal.name, segment_size))
    return out


def runs(sources: list[Source]) -> list[list[Source]]:
    """Contiguous runs (same timeline, consecutive numbers) of sorted sources."""
    out: list[list[Source]] = []
    for s in sources:
        last = out[-1][-1] if out else None
        if last is not None and last.timeline == s.timeline and last.segno + 1 == s.segno:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def batches(run: list[Source], size: int = BATCH) -> Iterator[list[Source]]:
    """``run`` in batches of ``size``, each one starting with the last of the one before."""
    i = 0
    while True:
        yield run[i : i + size]
        if i + size >= len(run):
            return
        i += size - 1


def _copy_live(folder: str, name: str, dest: str) -> bool:
    try:
        fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OperationFailed(f"cannot read {name} in the server's pg_wal: {exc}") from None
    with os.fdopen(fd, "rb") as src, open(dest, "xb") as out:
        shutil.copyfileobj(src, out, _COPY)
    return True


def fill(repo: Repository, batch: list[Source], folder: str, segment_size: int) -> list[str]:
    """Put the batch's segments into ``folder`` (emptied first); the names present, in
    order (a segment missing in the middle ends the list there)."""
    for stale in os.listdir(folder):
        os.unlink(os.path.join(folder, stale))
    got = []
    for s in batch:
        name = names.segment_name(s.timeline, s.segno, segment_size)
        dest = os.path.join(folder, name)
        ok = _copy_live(s.live_folder, name, dest) if s.live_folder else get(repo, name, dest)
        if not ok:
            break
        got.append(name)
    return got
