"""``pgsafe info``: the recoverable window per server and timeline — base backups,
archived WAL range, the window each backup opens and every gap, named (a report of the
recovery planner's views, :func:`pgsafe.recovery.plan.view`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pgsafe.recovery import inventory
from pgsafe.recovery.plan import TimelineView, merged, view
from pgsafe.recovery.walscan import CommitScanner
from pgsafe.repo.repository import Repository
from pgsafe.wal import names, server_record


@dataclass
class TimelineInfo:
    timeline: int
    backups: list[dict[str, Any]]
    wal: dict[str, Any]
    recoverable_from: str | None
    recoverable_to: str | None
    windows: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    parent: dict[str, Any] | None = None


@dataclass
class InfoReport:
    server: str
    repo: str
    system_identifier: str | None
    timelines: list[TimelineInfo] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    partials: list[str] = field(default_factory=list)


def _timeline_info(v: TimelineView, inv: inventory.Inventory) -> TimelineInfo:
    tli = v.timeline
    size = inv.archive.segment_size
    own = sorted(inv.archive.segments.get(tli, frozenset()))
    wal = {
        "first": names.segment_name(tli, own[0], size) if own else None,
        "last": names.segment_name(tli, own[-1], size) if own else None,
        "count": len(own),
    }
    backups = [
        {
            "id": b.id,
            "finished_at": b.finished_at.isoformat(),
            "start_lsn": names.format_lsn(b.start_lsn),
            "stop_lsn": names.format_lsn(b.stop_lsn),
        }
        for b in inv.backups
        if b.timeline == tli
    ]
    windows = [
        {
            "backup": w.backup_id,
            "from": w.start.isoformat(),
            "to": w.end.isoformat() if w.end else None,
            "to_lsn": names.format_lsn(w.end_lsn),
            "stops_at_gap": w.gap_after,
        }
        for w in v.windows
    ]
    reaching = [w for w in v.windows if not w.gap_after and w.end and w.end > w.start]
    spans = merged(reaching) or merged(v.windows)
    start = spans[-1][0].isoformat() if spans else None
    end = spans[-1][1].isoformat() if spans else None
    parent = None
    if len(v.path) > 1:
        parent = {"timeline": v.path[-2].timeline, "switch_lsn": names.format_lsn(v.path[-1].begin)}
    gaps = [{"first": g.first, "last": g.last, "count": g.count} for g in v.gaps]
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
                TimelineInfo(tli, [], {"count": len(inv.archive.segments.get(tli, ()))}, None,
                             None, [], [{"first": names.history_name(tli), "last":
                             names.history_name(tli), "count": 1}])
            )  # fmt: skip
            continue
        report.timelines.append(_timeline_info(view(inv.backups, inv.archive, scan, tli), inv))
    report.marks = inventory.marks(repo)
    report.partials = sorted(inv.partials)
    return report
