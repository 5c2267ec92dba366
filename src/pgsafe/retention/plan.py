"""The expiry plan: a pure function of (catalog, policy, now).

Backups are grouped into series: logical backups per database (all-databases backups
form their own series), physical backups per server.  In each series a backup stays
when any of these holds, and the plan says which:

- it is pinned (``pgsafe keep ID``);
- it is the newest valid backup of its series (never removed, whatever the policy says:
  so the newest valid backup of each kind, and of each database, always survives);
- it is among the ``keep_last`` newest valid backups of its series;
- it is younger than ``keep_days``;
- it is in use (a running restore or verification holds its lock).

Failed backups are never counted as valid.  A kind without any rule keeps everything.
WAL: a segment stays when a kept physical backup may need it — every segment from the
start of the oldest kept base backup onwards, on every timeline; ``.history`` files
always stay; with no physical backup kept, no WAL is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pgsafe.models.kinds import BackupKind, BackupStatus
from pgsafe.repo.catalog import Manifest
from pgsafe.retention.policy import Policy
from pgsafe.wal import names


@dataclass
class Decision:
    id: str
    kind: str
    series: str
    keep: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class ExpiryPlan:
    decisions: list[Decision]
    remove_wal: list[str]
    oldest_needed_wal: str | None

    @property
    def remove(self) -> list[str]:
        return [d.id for d in self.decisions if not d.keep]

    @property
    def kept(self) -> list[str]:
        return [d.id for d in self.decisions if d.keep]


def series_of(m: Manifest) -> str:
    if m.kind == BackupKind.PHYSICAL:
        return f"physical:{m.server}"
    return f"logical:{m.database if m.database is not None else '(all)'}"


def _finished(m: Manifest) -> datetime:
    return datetime.fromisoformat(m.finished_at)


def plan_expiry(
    backups: Iterable[Manifest],
    policy: Policy,
    now: datetime,
    *,
    in_use: frozenset[str] = frozenset(),
    wal_names: Iterable[str] = (),
    segment_size: int = names.DEFAULT_SEGMENT_SIZE,
) -> ExpiryPlan:
    items = sorted(backups, key=lambda m: (_finished(m), m.id))
    decisions: dict[str, Decision] = {
        m.id: Decision(m.id, m.kind, series_of(m), False) for m in items
    }
    newest_valid: dict[str, str] = {}
    for m in items:
        if m.status == BackupStatus.OK:
            newest_valid[series_of(m)] = m.id
    by_series: dict[str, list[Manifest]] = {}
    for m in items:
        by_series.setdefault(series_of(m), []).append(m)
    for series, members in by_series.items():
        rule = policy.rule(members[0].kind)
        valid = [m for m in members if m.status == BackupStatus.OK]
        newest = {m.id for m in valid[-rule.keep_last :]} if rule.keep_last else set()
        for m in members:
            d = decisions[m.id]
            if rule.empty:
                d.reasons.append(f"no retention rule for {m.kind} backups")
            if m.keep:
                d.reasons.append("pinned with pgsafe keep")
            if newest_valid.get(series) == m.id:
                d.reasons.append(f"newest valid backup of {series}")
            if m.id in newest:
                d.reasons.append(f"among the {rule.keep_last} newest of {series}")
            if rule.keep_days is not None and m.status == BackupStatus.OK:
                age = now - _finished(m)
                if age <= timedelta(days=rule.keep_days):
                    d.reasons.append(f"younger than {rule.keep_days:g} days")
            if m.id in in_use:
                d.reasons.append("in use by a running restore or verification")
            d.keep = bool(d.reasons)
    kept_physical = [m for m in items if m.kind == BackupKind.PHYSICAL and decisions[m.id].keep]
    remove_wal: list[str] = []
    oldest: str | None = None
    starts = [_start_wal(m, segment_size) for m in kept_physical if m.physical.start_wal]
    if None in starts:  # a kept backup does not say where its WAL starts: keep it all
        return ExpiryPlan([decisions[m.id] for m in items], [], None)
    if starts:
        oldest = min((n for n in starts if n), key=lambda n: names.segment_number(n, segment_size))
        floor = names.segment_number(oldest, segment_size)
        for name in wal_names:
            w = names.parse(name)
            if w is None or w.kind == "history" or w.segment is None:
                continue
            if names.segment_number(w.segment, segment_size) < floor:
                remove_wal.append(name)
    return ExpiryPlan([decisions[m.id] for m in items], sorted(remove_wal), oldest)


def _start_wal(m: Manifest, segment_size: int) -> str | None:
    """The first WAL segment backup ``m`` needs, or None when its catalog entry does not
    say it credibly (not a segment name, or not the segment of its start LSN): then no
    WAL is removed, since a wrong floor would delete what a kept backup needs."""
    start = m.physical.start_wal
    wal = names.parse(start) if isinstance(start, str) else None
    if wal is None or wal.kind != "segment" or wal.segment is None:
        return None
    lsn = m.physical.start_lsn
    if lsn is not None:
        try:
            if names.lsn_segment(names.parse_lsn(str(lsn)), segment_size) != names.segment_number(
                wal.segment, segment_size
            ):
                return None
        except ValueError:
            return None
    return wal.segment
