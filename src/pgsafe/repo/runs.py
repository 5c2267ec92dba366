"""The run history of scheduled jobs, kept in the repository.

Written by :mod:`pgsafe.schedule` (the daemon, ``pgsafe schedule run``), read by
:mod:`pgsafe.status` (the last run of each job): a record of the repository that both
import, so neither imports the other for it.

One JSON object per run, stored atomically under
``<server>/history/<started>-<job>.json`` and never overwritten (a clash of names gets
a ``~2`` suffix, which sorts after the first), so the history survives the daemon and
is shared by everything that runs jobs: the daemon, ``pgsafe schedule run`` from cron
or a systemd timer, and readers such as ``pgsafe status`` (:func:`read_history`,
:func:`last_runs`).

A record holds no secrets: the command line as configured (the config holds no
passwords, libpq's environment and ~/.pgpass do), and the command's own ``--json``
result, which pgsafe keeps free of secrets.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from pgsafe.errors import ObjectExists, VerificationFailed
from pgsafe.models.backup import JsonObject
from pgsafe.models.kinds import RunOutcome
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import RECORD_LIMIT, read_all

log = logging.getLogger(__name__)

OUTCOMES = tuple(RunOutcome)
FORMAT = 1


@dataclass(frozen=True)
class Run:
    """One run of a job."""

    job: str
    command: list[str]
    outcome: str  # a RunOutcome (checked on read against OUTCOMES)
    exit_code: int | None
    scheduled_for: str | None  # ISO 8601 UTC: the schedule slot this run covers
    started_at: str
    finished_at: str
    duration_s: float
    reason: str = "schedule"  # schedule | missed | manual
    server: str = "main"
    result: JsonObject | None = None  # the command's --json output, as it printed it
    error: str | None = None  # a one-line reason when it did not succeed
    format: int = FORMAT
    extra: JsonObject = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == RunOutcome.SUCCESS

    def to_json(self) -> JsonObject:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: object) -> Run:
        """A run from its stored record, checked (the repository is untrusted input).

        Raises ValueError or TypeError for a record of the wrong shape.
        """
        if not isinstance(doc, dict):
            raise TypeError("not a JSON object")
        known = set(cls.__dataclass_fields__)
        run = cls(**{k: v for k, v in doc.items() if k in known})
        texts = (run.job, run.started_at, run.finished_at, run.reason, run.server)
        if not all(isinstance(t, str) for t in texts) or run.outcome not in OUTCOMES:
            raise TypeError("a field has the wrong type")
        if not isinstance(run.command, list) or not all(isinstance(c, str) for c in run.command):
            raise TypeError("command is not a list of words")
        if type(run.duration_s) not in (int, float) or not 0 <= run.duration_s < 1e9:
            raise ValueError("duration_s out of range")
        if run.exit_code is not None and type(run.exit_code) is not int:
            raise TypeError("exit_code is not a number")
        if run.scheduled_for is not None and not isinstance(run.scheduled_for, str):
            raise TypeError("scheduled_for is not a time")
        if run.error is not None and not isinstance(run.error, str):
            raise TypeError("error is not text")
        if run.result is not None and not isinstance(run.result, dict):
            raise TypeError("result is not an object")
        if not isinstance(run.extra, dict):
            raise TypeError("extra is not an object")
        run.started(), run.slot(), datetime.fromisoformat(run.finished_at)  # parse, or raise
        return run

    def started(self) -> datetime:
        return datetime.fromisoformat(self.started_at)

    def slot(self) -> datetime:
        """The schedule slot this run covered (its start, for runs outside a schedule)."""
        return datetime.fromisoformat(self.scheduled_for or self.started_at)


def _prefix(repo: Repository) -> str:
    return f"{repo.server}/history"


def record(repo: Repository, run: Run) -> str:
    """Store ``run`` as a new history object; returns its key.  Never overwrites."""
    stamp = run.started().strftime("%Y%m%dT%H%M%S") + f"{run.started().microsecond:06d}Z"
    job = re.sub(r"[^A-Za-z0-9_.-]+", "_", run.job)
    base = f"{_prefix(repo)}/{stamp}-{job}"
    body = json.dumps(run.to_json(), indent=1, ensure_ascii=False, default=str).encode() + b"\n"
    n = 1
    while True:
        key = f"{base}.json" if n == 1 else f"{base}~{n}.json"  # '~' sorts after '.'
        try:
            repo.storage.put(key, [body], overwrite=False)
            return key
        except ObjectExists:
            n += 1


def read_history(repo: Repository) -> list[Run]:
    """Every recorded run of this repository's server, oldest first.

    A damaged record is logged and skipped: history is informative, never fatal.
    """
    runs: list[Run] = []
    for key in repo.storage.list(_prefix(repo)):
        if not key.endswith(".json"):
            continue
        try:
            doc = json.loads(read_all(repo.storage, key, RECORD_LIMIT))
            runs.append(Run.from_json(doc))
        except (ValueError, TypeError, RecursionError, VerificationFailed) as exc:
            log.warning("skipping damaged history record %s: %s", key, exc)
    runs.sort(key=lambda r: (r.started(), r.job))
    return runs


def last_runs(runs: Iterable[Run], *, completed_only: bool = False) -> dict[str, Run]:
    """The newest run of each job; ``completed_only`` leaves out interrupted runs."""
    out: dict[str, Run] = {}
    for r in runs:
        if completed_only and r.outcome == RunOutcome.INTERRUPTED:
            continue
        prev = out.get(r.job)
        if prev is None or r.started() >= prev.started():
            out[r.job] = r
    return out
