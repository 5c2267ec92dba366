"""The typed parts of what ``recover`` reports: the target, the plan, the state the
recovered server reached, and each check's result.

Each part's JSON is the shape scripts read (``recover --json``; README, "The JSON of
each command"): :meth:`TargetSummary.to_json` leaves out the facts the target has not
(``time``, ``xid``, ``lsn``, ``name``), and :meth:`PlanWindow.to_json` names the window's
ends ``from`` and ``to``; :class:`ReachedState` and :class:`CheckResult` are their own
JSON (``dataclasses.asdict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from pgsafe.recovery.plan import Plan
from pgsafe.recovery.targets import Target
from pgsafe.wal import names


@dataclass(frozen=True)
class TargetSummary:
    """The resolved target: its kind, inclusive or not, in words, and its own facts."""

    kind: str
    inclusive: bool
    description: str
    time: str | None = None  # ISO 8601, UTC
    xid: int | None = None
    lsn: str | None = None  # X/Y
    name: str | None = None

    @classmethod
    def of(cls, t: Target) -> TargetSummary:
        time = t.time.astimezone(UTC).isoformat() if t.time is not None else None
        lsn = names.format_lsn(t.lsn) if t.lsn is not None else None
        return cls(t.kind, t.inclusive, t.describe(), time, t.xid, lsn, t.name)

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "kind": self.kind,
            "inclusive": self.inclusive,
            "description": self.description,
        }
        for key, value in (("time", self.time), ("xid", self.xid), ("lsn", self.lsn),
                           ("name", self.name)):  # fmt: skip
            if value is not None:
                doc[key] = value
        return doc


@dataclass(frozen=True)
class WalNeeded:
    """The archived segments the recovery reads: how many, the first and last, and
    whether the count is exact (``False``: at most)."""

    count: int
    first: str | None
    last: str | None
    exact: bool


@dataclass(frozen=True)
class PlanWindow:
    """The window the chosen backup opens: from its end to the last archived commit
    (``None``: none archived after it yet)."""

    start: str
    end: str | None

    def to_json(self) -> dict[str, object]:
        return {"from": self.start, "to": self.end}


@dataclass(frozen=True)
class PlanSummary:
    """The plan as reported: the backup, its end, the timeline, the WAL and window."""

    backup: str
    backup_finished_at: str
    timeline: int
    wal_needed: WalNeeded
    window: PlanWindow
    notes: list[str]

    @classmethod
    def of(cls, p: Plan) -> PlanSummary:
        wal = p.wal_needed
        return cls(
            backup=p.backup.id,
            backup_finished_at=p.backup.finished_at.isoformat(),
            timeline=p.timeline,
            wal_needed=WalNeeded(
                len(wal), wal[0] if wal else None, wal[-1] if wal else None, p.wal_exact
            ),
            window=PlanWindow(
                p.window.start.isoformat(), p.window.end.isoformat() if p.window.end else None
            ),
            notes=list(p.notes),
        )

    def to_json(self) -> dict[str, object]:
        w = self.wal_needed
        return {
            "backup": self.backup,
            "backup_finished_at": self.backup_finished_at,
            "timeline": self.timeline,
            "wal_needed": {"count": w.count, "first": w.first, "last": w.last, "exact": w.exact},
            "window": self.window.to_json(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ReachedState:
    """Where the started server's recovery ended."""

    last_transaction_time: str | None  # ISO 8601; None: no commit replayed
    lsn: str | None  # the last replayed LSN, X/Y
    timeline: int
    in_recovery: bool  # True: paused at the target
    stop_reason: str | None  # the server log's "recovery stopping ..." line


@dataclass(frozen=True)
class CheckResult:
    """One ``--check`` query: the SQL, whether it returned true, and in words."""

    name: str
    ok: bool
    detail: str
