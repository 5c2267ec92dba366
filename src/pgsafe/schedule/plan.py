"""Pure scheduling decisions: which runs were missed, what is due next.

No I/O and no clock: every function takes the times it needs, so the rules are
unit-tested on many cases.

* A run is **missed** when a scheduled slot of the job lies after the slot its last
  completed run covered and at or before now (the daemon was down, or busy elsewhere).
  Missed slots are logged with their count and the job is run **once**, covering the
  newest missed slot.  A job with no history has missed nothing: it first runs at its
  next slot.
* Slots that pass while the job itself is running are skipped, not queued (as systemd
  timers do): a job that runs longer than its interval does not pile up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pgsafe.schedule import cron
from pgsafe.schedule.jobs import Job

MAX_COUNTED = 10_000  # missed slots counted at most (an every-second job down for a day)


@dataclass(frozen=True)
class Missed:
    job: str
    first: datetime  # the oldest missed slot
    last: datetime  # the newest missed slot: the one the catch-up run covers
    count: int  # how many slots were missed (at most MAX_COUNTED)
    more: bool  # True when there were more than MAX_COUNTED


def missed_runs(
    jobs: Sequence[Job], last_slots: Mapping[str, datetime], now: datetime
) -> list[Missed]:
    """The jobs that missed at least one slot since their last completed run, in job order."""
    out: list[Missed] = []
    for job in jobs:
        last = last_slots.get(job.name)
        if last is None:
            continue
        slots = cron.fire_times(job.schedule, last, now, MAX_COUNTED + 1)
        if not slots:
            continue
        more = len(slots) > MAX_COUNTED
        slots = slots[:MAX_COUNTED]
        newest = slots[-1] if not more else _newest_slot(job, now)
        out.append(Missed(job.name, slots[0], newest, len(slots), more))
    return out


def _newest_slot(job: Job, now: datetime) -> datetime:
    """The newest slot at or before ``now`` (found by walking from a little before)."""
    back = timedelta(seconds=1)
    while True:
        slots = cron.fire_times(job.schedule, now - back, now, MAX_COUNTED)
        if slots:
            return slots[-1]
        back *= 8


def next_slots(jobs: Sequence[Job], after: datetime) -> dict[str, datetime]:
    """Each job's first slot strictly after ``after``."""
    return {j.name: cron.next_after(j.schedule, after) for j in jobs}


def due(jobs: Sequence[Job], next_at: Mapping[str, datetime], now: datetime) -> list[Job]:
    """Jobs whose next slot has come, oldest slot first, then in config order."""
    order = {j.name: i for i, j in enumerate(jobs)}
    ready = [j for j in jobs if next_at[j.name] <= now]
    return sorted(ready, key=lambda j: (next_at[j.name], order[j.name]))


def skipped_while_running(job: Job, slot: datetime, finished: datetime) -> int:
    """Slots of ``job`` after ``slot`` that passed before ``finished`` (they are skipped)."""
    return len(cron.fire_times(job.schedule, slot, finished, MAX_COUNTED))


def due_once(
    jobs: Sequence[Job], last_slots: Mapping[str, datetime], now: datetime
) -> list[tuple[Job, datetime | None, str]]:
    """For ``daemon --once``: every job that never ran, or missed a slot; with its slot
    (None for a first run) and the reason (``first`` or ``missed``)."""
    missed = {m.job: m for m in missed_runs(jobs, last_slots, now)}
    out: list[tuple[Job, datetime | None, str]] = []
    for j in jobs:
        if j.name not in last_slots:
            out.append((j, None, "first"))
        elif j.name in missed:
            out.append((j, missed[j.name].last, "missed"))
    return out
