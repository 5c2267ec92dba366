"""``pgsafe info``: the recoverable window per server and timeline — base backups,
archived WAL range, the window each backup opens and every gap, named (a report of the
recovery planner's views, :func:`pgsafe.recovery.plan.view`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pgsafe.config import state_home
from pgsafe.models.marks import DamagedMark, RestorePoint
from pgsafe.pg.toolset import ToolStatus, tools_for
from pgsafe.recovery import inventory, lastrecovery
from pgsafe.recovery.plan import Gap, TimelineView, merged, view
from pgsafe.recovery.walscan import CommitScanner
from pgsafe.repo.repository import Repository
from pgsafe.wal import names, server_record


@dataclass(frozen=True)
class BackupEntry:
    """A base backup on the timeline: its id, end time and LSN range."""

    id: str
    finished_at: str
    start_lsn: str
    stop_lsn: str


@dataclass(frozen=True)
class WalRange:
    """The timeline's archived segments: the first, the last (None: none) and how many."""

    first: str | None
    last: str | None
    count: int


@dataclass(frozen=True)
class WalCount:
    """A timeline without its history file: only how many segments are archived."""

    count: int


@dataclass(frozen=True)
class WindowEntry:
    """The window one backup opens (JSON: ``from``, ``to``): from its end to the last
    reachable commit (None: none yet), the LSN it reaches, and whether a gap stops it."""

    backup: str
    start: str
    end: str | None
    to_lsn: str
    stops_at_gap: bool

    def to_json(self) -> dict[str, object]:
        return {
            "backup": self.backup,
            "from": self.start,
            "to": self.end,
            "to_lsn": self.to_lsn,
            "stops_at_gap": self.stops_at_gap,
        }


@dataclass(frozen=True)
class ParentTimeline:
    """The timeline this one branched from, and the LSN of the switch."""

    timeline: int
    switch_lsn: str


@dataclass
class TimelineInfo:
    timeline: int
    backups: list[BackupEntry]
    wal: WalRange | WalCount
    recoverable_from: str | None
    recoverable_to: str | None
    windows: list[WindowEntry]
    gaps: list[Gap]
    parent: ParentTimeline | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "timeline": self.timeline,
            "backups": [asdict(b) for b in self.backups],
            "wal": asdict(self.wal),
            "recoverable_from": self.recoverable_from,
            "recoverable_to": self.recoverable_to,
            "windows": [w.to_json() for w in self.windows],
            "gaps": [asdict(g) for g in self.gaps],
            "parent": asdict(self.parent) if self.parent is not None else None,
        }


@dataclass
class InfoReport:
    server: str
    repo: str
    system_identifier: str | None
    timelines: list[TimelineInfo] = field(default_factory=list)
    marks: list[RestorePoint | DamagedMark] = field(default_factory=list)
    partials: list[str] = field(default_factory=list)
    pg_major: int | None = None  # the server's, as the repository recorded it
    tools: list[ToolStatus] = field(default_factory=list)  # found for pg_major
    last_recovery: lastrecovery.LastRecovery | None = None  # recorded by this machine


def _timeline_info(v: TimelineView, inv: inventory.Inventory) -> TimelineInfo:
    tli = v.timeline
    size = inv.archive.segment_size
    own = sorted(inv.archive.segments.get(tli, frozenset()))
    wal = WalRange(
        names.segment_name(tli, own[0], size) if own else None,
        names.segment_name(tli, own[-1], size) if own else None,
        len(own),
    )
    backups = [
        BackupEntry(
            b.id,
            b.finished_at.isoformat(),
            names.format_lsn(b.start_lsn),
            names.format_lsn(b.stop_lsn),
        )
        for b in inv.backups
        if b.timeline == tli
    ]
    windows = [
        WindowEntry(
            w.backup_id,
            w.start.isoformat(),
            w.end.isoformat() if w.end else None,
            names.format_lsn(w.end_lsn),
            w.gap_after,
        )
        for w in v.windows
    ]
    reaching = [w for w in v.windows if not w.gap_after and w.end and w.end > w.start]
    spans = merged(reaching) or merged(v.windows)
    start = spans[-1][0].isoformat() if spans else None
    end = spans[-1][1].isoformat() if spans else None
    parent = None
    if len(v.path) > 1:
        parent = ParentTimeline(v.path[-2].timeline, names.format_lsn(v.path[-1].begin))
    gaps = list(v.gaps)
    return TimelineInfo(tli, backups, wal, start, end, windows, gaps, parent)


def info(repo: Repository) -> InfoReport:
    record = server_record.load(repo)
    inv = inventory.load(repo)
    scan = CommitScanner(repo, inv.archive.segment_size, record.pg_major if record else None)
    tlis = (
        set(inv.archive.segments) | set(inv.archive.histories) | {b.timeline for b in inv.backups}
    )
    report = InfoReport(repo.server, repo.storage.url, record.system_identifier if record else None)
    for tli in sorted(tlis):
        if tli > 1 and tli not in inv.archive.histories:
            report.timelines.append(
                TimelineInfo(tli, [], WalCount(len(inv.archive.segments.get(tli, ()))), None,
                             None, [], [Gap(names.history_name(tli), names.history_name(tli), 1)])
            )  # fmt: skip
            continue
        report.timelines.append(_timeline_info(view(inv.backups, inv.archive, scan, tli), inv))
    report.marks = inventory.marks(repo)
    report.partials = sorted(inv.partials)
    report.last_recovery = lastrecovery.load(state_home(), repo.storage.url, repo.server)
    if record is not None and record.pg_major is not None:
        report.pg_major = record.pg_major
        report.tools = tools_for(record.pg_major)
    return report
