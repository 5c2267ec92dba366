"""The recovery plan (pure): which base backup, which archived WAL, is the target inside
the recoverable window, is anything missing on the way.

Everything here works on plain data — the backups (:class:`BackupRef`), what the archive
holds (:class:`ArchiveState`) and a lookup of the last commit time in a segment — so that
every decision is unit-tested without PostgreSQL.  The plan is made, and refused when it
cannot succeed, before anything is written.

Rules (what PostgreSQL itself will and will not do):

* A base backup restores to a consistent state at its stop LSN (its WAL is inside it), so
  the archive is needed only from the segment after the backup's last one.
* A time target ``t`` is reachable from backup B when B ended at or before ``t`` and the
  archive, contiguous from B, holds a commit later than ``t``: PostgreSQL stops *before*
  the first commit after the target and fails when it never sees one.  So the window is
  [end of B, last archived commit).
* On a timeline path the file read for segment ``s`` is the newest timeline that had
  begun by ``s`` (the switch segment comes from the new timeline).
* ``latest`` is PostgreSQL's own: the highest timeline reachable through consecutive
  history files; every segment from the backup to the end of the archive must be there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pgsafe.errors import BadInput, NotFound, OperationFailed
from pgsafe.recovery.targets import Target, format_time
from pgsafe.wal import names
from pgsafe.wal.timelines import Span, path_to, timeline_for_segment

CommitLookup = Callable[[int, int], datetime | None]  # (timeline, segno) -> last commit time


@dataclass(frozen=True)
class BackupRef:
    id: str
    timeline: int
    start_lsn: int
    stop_lsn: int
    finished_at: datetime
    next_xid: int | None = None

    def stop_segment(self, segment_size: int) -> int:
        return names.lsn_segment(max(self.stop_lsn - 1, self.start_lsn), segment_size)


@dataclass(frozen=True)
class ArchiveState:
    segment_size: int
    segments: Mapping[int, frozenset[int]]  # timeline -> archived segment numbers
    histories: Mapping[int, list[tuple[int, int]]] = field(default_factory=dict)

    def latest_timeline(self) -> int:
        tli = 1
        while tli + 1 in self.histories:
            tli += 1
        return tli


@dataclass(frozen=True)
class Window:
    """What one base backup can reach without crossing a gap."""

    backup_id: str
    start: datetime  # the backup's end: the earliest recoverable time from it
    end: datetime | None  # the last archived commit reachable (None: none after the backup)
    start_lsn: int
    end_lsn: int  # end of the last contiguous archived segment
    last_segment: int
    gap_after: bool  # a missing segment stops this window before the end of the archive


@dataclass(frozen=True)
class Gap:
    first: str
    last: str
    count: int

    def describe(self) -> str:
        return self.first if self.count == 1 else f"{self.first} .. {self.last} ({self.count})"


@dataclass(frozen=True)
class TimelineView:
    """The archive as seen from a target timeline."""

    timeline: int
    path: list[Span]
    segment_size: int
    backups: list[BackupRef]  # usable on this path, oldest first
    windows: list[Window]
    gaps: list[Gap]
    path_end: int | None  # last archived segment on the path

    def seg_name(self, segno: int) -> str:
        tli = timeline_for_segment(self.path, segno, self.segment_size)
        return names.segment_name(tli, segno, self.segment_size)

    def describe_windows(self) -> str:
        spans = merged(self.windows)
        if not spans:
            return "nothing is recoverable to a point in time (no commit archived after a backup)"
        return "; ".join(f"{format_time(a)} .. {format_time(b)}" for a, b in spans)


@dataclass(frozen=True)
class Plan:
    target: Target
    timeline: int
    backup: BackupRef
    wal_needed: list[str]
    wal_exact: bool  # False: an upper bound (the target's position is known only on replay)
    window: Window
    view: TimelineView
    notes: list[str] = field(default_factory=list)


def merged(windows: list[Window]) -> list[tuple[datetime, datetime]]:
    spans = sorted((w.start, w.end) for w in windows if w.end is not None and w.end > w.start)
    out: list[tuple[datetime, datetime]] = []
    for a, b in spans:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _gaps(missing: list[int], view_name: Callable[[int], str]) -> list[Gap]:
    out: list[Gap] = []
    run: list[int] = []
    for s in missing:
        if run and s != run[-1] + 1:
            out.append(Gap(view_name(run[0]), view_name(run[-1]), len(run)))
            run = []
        run.append(s)
    if run:
        out.append(Gap(view_name(run[0]), view_name(run[-1]), len(run)))
    return out


def view(
    backups: list[BackupRef],
    archive: ArchiveState,
    lookup: CommitLookup,
    timeline: int | None = None,
) -> TimelineView:
    """Windows, gaps and usable backups for recovery along ``timeline`` (default latest)."""
    tli = timeline or archive.latest_timeline()
    if tli > 1 and tli not in archive.histories:
        raise BadInput(
            f"timeline {tli} has no history file ({names.history_name(tli)}) in the archive",
            hint="choose another --timeline; `pgsafe info` lists the timelines",
        )
    path = path_to(tli, archive.histories.get(tli, []))
    size = archive.segment_size

    def present(segno: int) -> bool:
        t = timeline_for_segment(path, segno, size)
        return segno in archive.segments.get(t, frozenset())

    on_path = [
        s
        for span in path
        for s in archive.segments.get(span.timeline, frozenset())
        if timeline_for_segment(path, s, size) == span.timeline
        and (span.end is None or s <= names.lsn_segment(span.end, size))
    ]
    path_end = max(on_path) if on_path else None
    usable = sorted(
        (b for b in backups if any(sp.timeline == b.timeline and sp.contains(b.start_lsn,
                                   b.stop_lsn) for sp in path)),
        key=lambda b: (b.stop_lsn, b.finished_at),
    )  # fmt: skip
    windows = []
    for b in usable:
        stop = b.stop_segment(size)
        end = stop
        while present(end + 1):
            end += 1
        commit = None
        for s in range(end, stop - 1, -1):
            if present(s):
                commit = lookup(timeline_for_segment(path, s, size), s)
                if commit is not None:
                    break
        windows.append(
            Window(b.id, b.finished_at, commit, b.stop_lsn, (end + 1) * size, end,
                   path_end is not None and end < path_end)
        )  # fmt: skip
    first = min((b.stop_segment(size) + 1 for b in usable), default=None)
    missing = []
    if first is not None and path_end is not None:
        missing = [s for s in range(first, path_end + 1) if not present(s)]
    tv = TimelineView(tli, path, size, usable, windows, [], path_end)
    return TimelineView(tli, path, size, usable, windows, _gaps(missing, tv.seg_name), path_end)


def _pick(view_: TimelineView, backup_id: str | None, all_ids: list[str]) -> BackupRef | None:
    """The backup ``backup_id`` names: an exact id first, else a unique id prefix.

    An exact id always wins: two backups started in one second are ``...Z-physical``
    and ``...Z-physical-2``, and the first is a prefix of the second.
    """
    if backup_id is None:
        return None
    if not backup_id:
        raise BadInput("an empty backup id names no backup", hint="`pgsafe info` lists them")
    exact = [b for b in view_.backups if b.id == backup_id]
    if exact:
        return exact[0]
    if backup_id not in all_ids:
        prefixed = [i for i in all_ids if i.startswith(backup_id)]
        if len(prefixed) > 1:
            raise BadInput(
                f"backup id {backup_id!r} is ambiguous: {', '.join(prefixed[:5])}",
                hint="give more of the id",
            )
        matches = [b for b in view_.backups if b.id.startswith(backup_id)]
        if len(matches) == 1:
            return matches[0]
        if not prefixed:
            raise NotFound(f"no physical backup {backup_id!r}", hint="`pgsafe info` lists them")
    raise BadInput(
        f"backup {backup_id!r} cannot start a recovery on timeline {view_.timeline}",
        hint="it belongs to another timeline branch; choose another --backup or --timeline",
    )


def _missing(view_: TimelineView, first: int, last: int, archive: ArchiveState) -> list[str]:
    out = []
    for s in range(first, last + 1):
        t = timeline_for_segment(view_.path, s, view_.segment_size)
        if s not in archive.segments.get(t, frozenset()):
            out.append(names.segment_name(t, s, view_.segment_size))
    return out


def _refuse_missing(missing: list[str], what: str) -> OperationFailed:
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    return OperationFailed(
        f"cannot recover to {what}: WAL missing from the archive: {shown}",
        hint="nothing was written; restore the missing segments into the repository, or "
        "choose a target before them (`pgsafe info` shows the gaps)",
    )


@dataclass(frozen=True)
class _Planning:
    """What every kind of target plans from: the view, the backup forced by ``--backup``
    (or None) and the archive."""

    target: Target
    view: TimelineView
    forced: BackupRef | None
    archive: ArchiveState

    @property
    def size(self) -> int:
        return self.archive.segment_size

    @property
    def what(self) -> str:
        return self.target.describe()

    def window(self, b: BackupRef) -> Window:
        return next(w for w in self.view.windows if w.backup_id == b.id)

    def needed(self, b: BackupRef, last: int) -> list[str]:
        """The archived segments from the one after backup ``b`` to ``last``."""
        first = b.stop_segment(self.size) + 1
        return [self.view.seg_name(s) for s in range(first, last + 1)]

    def plan(
        self, b: BackupRef, wal: list[str], exact: bool, notes: list[str] | None = None
    ) -> Plan:
        return Plan(self.target, self.view.timeline, b, wal, exact, self.window(b), self.view,
                    notes or [])  # fmt: skip


def make_plan(
    target: Target,
    backups: list[BackupRef],
    archive: ArchiveState,
    lookup: CommitLookup,
    *,
    timeline: int | None = None,
    backup_id: str | None = None,
) -> Plan:
    """Plan a recovery to ``target``; raise (exit 1 or 2) with the window when it cannot work."""
    if not backups:
        raise BadInput("there is no physical base backup to recover from", hint="pgsafe backup")
    v = view(backups, archive, lookup, timeline)
    if not v.backups:
        raise BadInput(
            f"no base backup lies on timeline {v.timeline}'s history",
            hint="choose another --timeline; `pgsafe info` lists backups per timeline",
        )
    p = _Planning(target, v, _pick(v, backup_id, [b.id for b in backups]), archive)
    if target.kind in ("latest", "immediate"):
        return _plan_latest(p)
    if target.kind == "time":
        return _plan_time(p)
    if target.kind == "lsn" or (target.kind == "name" and target.lsn is not None):
        return _plan_lsn(p)
    return _plan_on_replay(p)


def _plan_latest(p: _Planning) -> Plan:
    """``latest`` (everything archived, every segment on the way present) and
    ``immediate`` (the backup's own end): from the newest backup, or the forced one."""
    b = p.forced or p.view.backups[-1]
    if p.target.kind == "immediate":
        return p.plan(b, [], True)
    last = p.view.path_end if p.view.path_end is not None else b.stop_segment(p.size)
    missing = _missing(p.view, b.stop_segment(p.size) + 1, last, p.archive)
    if missing:
        raise _refuse_missing(missing, p.what)
    return p.plan(b, p.needed(b, last), True)


def _plan_time(p: _Planning) -> Plan:
    """A time: the newest backup that ended by then, whose window reaches past it."""
    v, forced = p.view, p.forced
    assert p.target.time is not None
    t = p.target.time
    cands = [b for b in v.backups if b.finished_at <= t]
    if forced is not None:
        if forced.finished_at > t:
            raise BadInput(
                f"target {format_time(t)} is before the end of backup {forced.id} "
                f"({format_time(forced.finished_at)})",
                hint="choose an earlier backup, or leave --backup out",
            )
        cands = [forced]
    if not cands:
        raise BadInput(
            f"target {format_time(t)} is before the earliest recoverable time "
            f"{format_time(v.backups[0].finished_at)}",
            hint=f"the recoverable window is {v.describe_windows()}",
        )
    b = max(cands, key=lambda x: x.finished_at)
    w = p.window(b)
    if w.end is None or t >= w.end:
        if w.gap_after:
            missing = _missing(v, w.last_segment + 1, w.last_segment + 1, p.archive)
            raise _refuse_missing(missing, p.what)
        seen = "none after the backup" if w.end is None else format_time(w.end)
        raise BadInput(
            f"target {format_time(t)} is after the last archived commit ({seen})",
            hint=f"the recoverable window is {v.describe_windows()}; "
            "use --latest for everything archived",
        )
    return p.plan(b, p.needed(b, w.last_segment), False)


def _plan_lsn(p: _Planning) -> Plan:
    """An LSN (or a restore point pgsafe recorded with its LSN): the newest backup that
    ended before it; every segment up to it must be archived."""
    v, forced, size, what = p.view, p.forced, p.size, p.what
    assert p.target.lsn is not None
    lsn = p.target.lsn
    cands = [b for b in v.backups if b.stop_lsn <= lsn]
    if forced is not None:
        cands = [forced] if forced.stop_lsn <= lsn else []
    if not cands:
        raise BadInput(
            f"{what} is before the end of the earliest usable backup "
            f"(LSN {names.format_lsn(v.backups[0].stop_lsn)})",
            hint="the earliest recoverable point is the end of the first base backup",
        )
    b = max(cands, key=lambda x: x.stop_lsn)
    end_lsn = (v.path_end + 1) * size if v.path_end is not None else b.stop_lsn
    if lsn >= max(end_lsn, b.stop_lsn + 1):
        raise BadInput(
            f"{what} is after the end of the archived WAL (LSN {names.format_lsn(end_lsn)})",
            hint=f"recoverable LSNs: {names.format_lsn(v.backups[0].stop_lsn)} .. "
            f"{names.format_lsn(end_lsn)}; use --latest for everything archived",
        )
    last = names.lsn_segment(lsn, size)
    missing = _missing(v, b.stop_segment(size) + 1, last, p.archive)
    if missing:
        raise _refuse_missing(missing, what)
    return p.plan(b, p.needed(b, last), True)


def _plan_on_replay(p: _Planning) -> Plan:
    """An xid, or a restore point pgsafe did not record: the position is known only on
    replay, so the WAL list is an upper bound (to the end of the backup's window)."""
    v, target = p.view, p.target
    notes: list[str] = []
    if p.forced is not None:
        b = p.forced
    elif target.kind == "xid" and target.xid is not None:
        xid = target.xid
        cands = [x for x in v.backups if x.next_xid is not None and x.next_xid <= xid]
        b = cands[-1] if cands else v.backups[0]
        if not cands:
            notes.append(
                "the transaction may have started before every backup ended: "
                "recovering from the earliest one"
            )
    else:
        b = v.backups[0]
        notes.append(f"restore point {target.name!r} is not in pgsafe's catalog: "
                     "recovering from the earliest backup")  # fmt: skip
    w = p.window(b)
    if w.gap_after:
        notes.append(
            f"WAL is missing after {v.seg_name(w.last_segment)}: a target after it cannot be "
            "reached"
        )
    return p.plan(b, p.needed(b, w.last_segment), False, notes)
