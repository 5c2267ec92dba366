"""Where a scan starts (a base backup's start, or the oldest archived segment) and the
segments it reads: the archived ones from there on, then the live server's own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from pgsafe.errors import BadInput
from pgsafe.mistakes.live import LiveServer
from pgsafe.mistakes.segments import Source, archived
from pgsafe.models.kinds import BackupKind
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository
from pgsafe.wal import names
from pgsafe.wal.timelines import Span, path_to, read_history


@dataclass(frozen=True)
class Start:
    lsn: int
    timeline: int
    time: datetime | None  # the backup's start
    backup_id: str | None


def _backup_start(m: Manifest) -> Start | None:
    """The start of a physical backup from its (untrusted) catalog entry, or None."""
    tli, start_lsn = m.physical.timeline, m.physical.start_lsn
    if tli is None or not 1 <= tli <= 0xFFFFFFFF or start_lsn is None:
        return None
    try:
        return Start(names.parse_lsn(start_lsn), tli, datetime.fromisoformat(m.started_at), m.id)
    except ValueError:
        return None


def start_of(repo: Repository, since: datetime | None, segment_size: int) -> Start:
    """The newest base backup started before ``since`` (the newest of all without it);
    the oldest archived segment when there is none."""
    starts = []
    for m in repo.list_backups():
        s = _backup_start(m) if m.kind == BackupKind.PHYSICAL and m.ok else None
        if s is not None and s.time is not None:
            starts.append(s)
    starts.sort(key=lambda s: (s.time, s.lsn))
    usable = [s for s in starts if since is None or (s.time is not None and s.time <= since)]
    if usable:
        return usable[-1]
    arch = archived(repo, segment_size)
    if not arch:
        return Start(0, 1, None, None)
    tli = min(arch)
    return Start(names.segment_start(min(arch[tli]), segment_size), tli, None, None)


def _path(repo: Repository, newest: int, notes: list[str]) -> list[Span]:
    """The timelines leading to ``newest``, from its history file."""
    history = read_history(repo, newest) if newest > 1 else []
    if history is None:
        notes.append(f"the history of timeline {newest} is not archived: only that timeline"
                     " is read")  # fmt: skip
        history = []
    return path_to(newest, history)


def _archived_sources(
    arch: dict[int, set[int]], path: list[Span], first: int, segment_size: int
) -> list[Source]:
    out = []
    for span in path:
        lo = names.lsn_segment(span.begin, segment_size)
        hi = names.lsn_segment(span.end, segment_size) if span.end is not None else None
        out += [Source(span.timeline, s, None, span.begin, span.end)
                for s in sorted(arch.get(span.timeline, ()))
                if s >= max(first, lo) and (hi is None or s <= hi)]  # fmt: skip
    return out


def plan_sources(
    repo: Repository, start: Start, segment_size: int, live: LiveServer | None, notes: list[str]
) -> list[Source]:
    """Archived segments from ``start`` on, along the timelines that lead to the newest
    one (a timeline that was left is read up to where it was left), then the live
    server's segments not archived yet."""
    arch = archived(repo, segment_size)
    first = names.lsn_segment(start.lsn, segment_size)
    pos = live.wal_position() if live is not None else None
    if live is not None and (pos is None or not os.access(pos.pg_wal, os.R_OK | os.X_OK)):
        notes.append("the live server's pg_wal was not read (a standby, a role that may"
                     " not read data_directory, or another host): only archived WAL is"
                     " listed")  # fmt: skip
        pos = None
    newest = max([*arch, *([pos.timeline] if pos else [])], default=1)
    path = _path(repo, newest, notes)
    on_path = {s.timeline for s in path}
    off = sorted(t for t in arch if t not in on_path)
    if off:
        notes.append(f"timeline(s) {', '.join(map(str, off))} do not lead to timeline"
                     f" {newest}: not read")  # fmt: skip
    out = _archived_sources(arch, path, first, segment_size)
    if pos is not None:
        end = names.lsn_segment(names.parse_lsn(pos.flush_lsn), segment_size)
        done = max(arch.get(pos.timeline, set()), default=first - 1)
        out += [Source(pos.timeline, s, pos.pg_wal, path[-1].begin)
                for s in range(max(first, done + 1), end + 1)]  # fmt: skip
    if not out:
        raise BadInput(
            f"no WAL of server {repo.server!r} to read in {repo.storage.url}",
            hint="is archiving on? `pgsafe archive enable`, then `pgsafe check`",
        )
    return out
