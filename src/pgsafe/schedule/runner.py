"""Running one job: a child ``pgsafe`` process, its outcome, history, and hooks.

Each run is ``python -m pgsafe [--config C] --repo R --server S <command> --json``
in its own process group (a crash cannot take the daemon down, a terminal's Ctrl-C
does not reach it, and stopping it stops the PostgreSQL programs it started).  Its
JSON document is the run's result.  Runs of one server are serialised by the
repository lock ``job``, shared by the daemon and ``pgsafe schedule run``.

Stopping (:class:`StopControl`): after a first SIGTERM/SIGINT the running job may go on
for ``stop_grace`` seconds; then (or at once on a second signal) its process group gets
SIGTERM, and SIGKILL :data:`KILL_AFTER` seconds later.  Either way no half backup
appears: a backup becomes visible only when its manifest is written, last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from pgsafe.errors import LockHeld, PgsafeError
from pgsafe.models.backup import JsonObject
from pgsafe.models.kinds import RunOutcome
from pgsafe.repo import runs
from pgsafe.repo.repository import Repository
from pgsafe.schedule import hooks
from pgsafe.schedule.jobs import Job, ScheduleConfig
from pgsafe.schedule.stats import STATS, DaemonStats

log = logging.getLogger("pgsafe.schedule")

KILL_AFTER = 30.0
POLL = 0.2


@dataclass
class StopControl:
    """Set from signal handlers; read by the daemon loop and the runner."""

    event: threading.Event = field(default_factory=threading.Event)
    urgent: bool = False
    requested_at: float | None = None  # time.monotonic()

    def request(self) -> None:
        if self.event.is_set():
            self.urgent = True
        else:
            self.requested_at = time.monotonic()
            self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


@dataclass(frozen=True)
class Target:
    """Where the child commands go: the same config, repository and server."""

    repo_url: str
    server: str
    config_path: str | None = None
    python: str = sys.executable

    def argv(self, job: Job) -> list[str]:
        out = [self.python, "-m", "pgsafe"]
        if self.config_path:
            out += ["--config", self.config_path]
        out += ["--repo", self.repo_url, "--server", self.server, *job.argv, "--json"]
        return out


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _tail(f: IO[bytes], limit: int = 20) -> list[str]:
    f.seek(0)
    lines = f.read().decode("utf-8", "replace").splitlines()
    return [ln for ln in lines if ln.strip()][-limit:]


class Runner:
    """Runs jobs for one repository and server, one at a time."""

    def __init__(
        self,
        repo: Repository,
        target: Target,
        config: ScheduleConfig,
        *,
        stop: StopControl | None = None,
        now: Callable[[], datetime] | None = None,
        stats: DaemonStats | None = None,
    ) -> None:
        from pgsafe import clock

        self.repo = repo
        self.target = target
        self.config = config
        self.stop = stop or StopControl()
        self.now = now or clock.now
        self.stats = STATS if stats is None else stats

    # -- one run -------------------------------------------------------------
    def run(self, job: Job, slot: datetime | None, reason: str) -> runs.Run | None:
        """Run ``job`` now; None when a stop came while waiting for the job lock."""
        while True:
            try:
                with self.repo.lock("job", wait=False):
                    return self._run_locked(job, slot, reason)
            except LockHeld:
                pass
            if self.stop.requested:
                return None
            log.info("job %s waits for another job of server %s", job.name, self.repo.server)
            self.stop.event.wait(2.0)

    def _run_locked(self, job: Job, slot: datetime | None, reason: str) -> runs.Run:
        argv = self.target.argv(job)
        started = self.now()
        t0 = time.monotonic()
        what = f" (missed slot {_iso(slot)})" if reason == "missed" and slot else ""
        log.info("job %s started: pgsafe %s%s", job.name, job.command_line, what)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                return self._finish(
                    job, slot, reason, started, t0, RunOutcome.FAILED, None, None,
                    f"could not start pgsafe: {exc}",
                )  # fmt: skip
            outcome = self._wait(job, proc, t0)
            rc = proc.returncode
            out.seek(0)
            result = _json(out.read())
            err_lines = _tail(err)
        if rc == 0:
            outcome = RunOutcome.SUCCESS
        elif outcome is None:
            outcome = RunOutcome.FAILED
        error = None
        if outcome != RunOutcome.SUCCESS:
            error = _error_of(result, err_lines, rc, outcome)
            for ln in err_lines:
                log.warning("job %s: %s", job.name, ln)
        return self._finish(job, slot, reason, started, t0, outcome, rc, result, error)

    def _wait(self, job: Job, proc: subprocess.Popen[bytes], t0: float) -> str | None:
        """Wait for the child; returns ``interrupted``/``timeout`` if we stopped it."""
        stopped_as: str | None = None
        termed_at: float | None = None
        while True:
            try:
                proc.wait(timeout=POLL)
                return stopped_as
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if termed_at is None:
                if job.timeout is not None and now - t0 >= job.timeout:
                    log.warning("job %s ran longer than its timeout; terminating it", job.name)
                    stopped_as = RunOutcome.TIMEOUT
                elif self.stop.requested:
                    since = now - (self.stop.requested_at or now)
                    if self.stop.urgent or since >= self.config.stop_grace:
                        log.warning("job %s: stopping it now (SIGTERM)", job.name)
                        stopped_as = RunOutcome.INTERRUPTED
                if stopped_as is not None:
                    _signal_group(proc, signal.SIGTERM)
                    termed_at = now
            elif now - termed_at >= KILL_AFTER:
                log.warning("job %s did not stop after SIGTERM; killing it", job.name)
                _signal_group(proc, signal.SIGKILL)
                termed_at = float("inf")

    def _finish(
        self,
        job: Job,
        slot: datetime | None,
        reason: str,
        started: datetime,
        t0: float,
        outcome: str,
        rc: int | None,
        result: JsonObject | None,
        error: str | None,
    ) -> runs.Run:
        duration = round(time.monotonic() - t0, 3)
        run = runs.Run(
            job=job.name,
            command=list(job.display_argv),
            outcome=outcome,
            exit_code=rc,
            scheduled_for=_iso(slot) if slot else None,
            started_at=_iso(started),
            finished_at=_iso(self.now()),
            duration_s=duration,
            reason=reason,
            server=self.repo.server,
            result=result,
            error=error,
        )
        if outcome == RunOutcome.SUCCESS:
            summary = _summary(result)
            log.info("job %s succeeded in %.1f s%s", job.name, duration, summary)
        else:
            log.warning("job %s %s in %.1f s: %s", job.name, outcome.upper(), duration, error)
        self.stats.ran(job.name, started, run.ok, duration)
        try:
            runs.record(self.repo, run)
        except (PgsafeError, OSError) as exc:
            log.error("job %s: could not record the run in the history: %s", job.name, exc)
        self._hook(job, run)
        return run

    def _hook(self, job: Job, run: runs.Run) -> None:
        argv = self.config.hook_for(job, run.ok)
        if argv is None:
            return
        env = {
            **os.environ,
            "PGSAFE_EVENT": "success" if run.ok else "failure",
            "PGSAFE_JOB": job.name,
            "PGSAFE_SERVER": self.repo.server,
            "PGSAFE_OUTCOME": run.outcome,
        }
        res = hooks.run_hook(argv, run.to_json(), timeout=self.config.hook_timeout, env=env)
        if not res.ok:
            self.stats.hook_failed()


def _json(data: bytes) -> JsonObject | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else {"value": doc}


def _error_of(result: JsonObject | None, err_lines: list[str], rc: int | None, outcome: str) -> str:
    if outcome == RunOutcome.INTERRUPTED:
        return "stopped by the daemon's shutdown"
    if outcome == RunOutcome.TIMEOUT:
        return "ran longer than the job's timeout and was stopped"
    if result and isinstance(result.get("error"), str):
        return str(result["error"])
    errs = [ln for ln in err_lines if ln.startswith("error:")]
    if errs:
        return errs[-1].removeprefix("error:").strip()
    if result and result.get("ok") is False:
        return f"exit {rc}: the command reported a failed check"
    return f"exit {rc}" + (f": {err_lines[-1]}" if err_lines else "")


def _summary(result: JsonObject | None) -> str:
    if not result:
        return ""
    if isinstance(result.get("id"), str):
        return f" ({result['id']})"
    return ""
