"""The daemon loop: run each job at its slots, one at a time, until asked to stop.

The loop owns only timing; running a job is an :data:`Execute` callable (the
:class:`pgsafe.schedule.runner.Runner` in production, a fake in unit tests) and time
comes from a :class:`Clock`, so tests drive the loop without waiting.  On start, runs
missed while the daemon was down (from the history, see :mod:`pgsafe.schedule.plan`)
are logged and each such job runs once.  After a stop request no new job starts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pgsafe import clock
from pgsafe.repo.runs import Run
from pgsafe.schedule import cron, plan
from pgsafe.schedule.jobs import Job
from pgsafe.schedule.runner import StopControl
from pgsafe.schedule.stats import STATS, DaemonStats

log = logging.getLogger("pgsafe.schedule")

Execute = Callable[[Job, datetime | None, str], Run | None]
MAX_SLEEP = 30.0  # re-read the clock at least this often (wall-clock jumps)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, stop: StopControl) -> None:
        """Wait ``seconds`` or until a stop is requested, whichever comes first."""
        ...


class SystemClock:
    """Wall-clock time; with ``PGSAFE_FAKE_NOW`` it starts there and runs at real speed."""

    def __init__(self) -> None:
        fake = os.environ.get("PGSAFE_FAKE_NOW")
        self._offset = clock.now() - datetime.now(UTC) if fake else timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def sleep(self, seconds: float, stop: StopControl) -> None:
        stop.event.wait(max(0.0, min(seconds, MAX_SLEEP)))


@dataclass
class Summary:
    runs: list[Run] = field(default_factory=list)
    missed: list[plan.Missed] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.runs if not r.ok)


def _fmt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Daemon:
    def __init__(
        self,
        jobs: Sequence[Job],
        execute: Execute,
        clock: Clock,
        stop: StopControl,
        *,
        last_slots: Mapping[str, datetime] | None = None,
        stats: DaemonStats | None = None,
    ) -> None:
        self.jobs = list(jobs)
        self.execute = execute
        self.clock = clock
        self.stop = stop
        self.last_slots = dict(last_slots or {})
        self.stats = STATS if stats is None else stats

    def _run(self, job: Job, slot: datetime | None, reason: str, summary: Summary) -> None:
        run = self.execute(job, slot, reason)
        if run is not None:
            summary.runs.append(run)

    def run_once(self) -> Summary:
        """``--once``: every job that never ran or missed a slot, once; then return."""
        summary = Summary()
        for job, slot, reason in plan.due_once(self.jobs, self.last_slots, self.clock.now()):
            if self.stop.requested:
                break
            self._run(job, slot, reason, summary)
        return summary

    def run(self) -> Summary:
        """Run until a stop is requested; returns what ran."""
        summary = Summary()
        start = self.clock.now()
        next_at = plan.next_slots(self.jobs, start)
        summary.missed = plan.missed_runs(self.jobs, self.last_slots, start)
        by_name = {j.name: j for j in self.jobs}
        for m in summary.missed:
            more = "+" if m.more else ""
            log.warning(
                "job %s missed %d%s run(s) from %s to %s (the daemon was not running); "
                "running it once now",
                m.job, m.count, more, _fmt(m.first), _fmt(m.last),
            )  # fmt: skip
        for m in summary.missed:
            if self.stop.requested:
                return summary
            job = by_name[m.job]
            self._run(job, m.last, "missed", summary)
            self._reschedule(job, next_at, m.last)
        for j in self.jobs:
            log.info("job %s: next run at %s", j.name, _fmt(next_at[j.name]))
            self.stats.scheduled(j.name, next_at[j.name])
        while not self.stop.requested:
            now = self.clock.now()
            ready = plan.due(self.jobs, next_at, now)
            if not ready:
                wake = min(next_at.values())
                self.clock.sleep((wake - now).total_seconds(), self.stop)
                continue
            job = ready[0]
            slot = next_at[job.name]
            self._run(job, slot, "schedule", summary)
            self._reschedule(job, next_at, slot)
        log.info("stop requested: no new job starts; exiting")
        return summary

    def _reschedule(self, job: Job, next_at: dict[str, datetime], slot: datetime) -> None:
        finished = self.clock.now()
        skipped = plan.skipped_while_running(job, slot, finished)
        if skipped:
            log.info("job %s: %d slot(s) passed while it ran; skipped", job.name, skipped)
        nxt = cron.next_after(job.schedule, max(slot, finished))
        next_at[job.name] = nxt
        log.debug("job %s: next run at %s", job.name, _fmt(nxt))
        self.stats.scheduled(job.name, nxt)
