"""The daemon's own counters, and their Prometheus text (:func:`daemon_metrics`).

One process-wide :data:`STATS` object: the runner updates it after every run, the
metrics endpoint reads it from its thread (a lock keeps the two apart).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class JobStats:
    runs: int = 0
    failures: int = 0
    last_run: float | None = None  # Unix time the last run started
    last_ok: bool | None = None
    last_duration: float | None = None
    next_run: float | None = None


@dataclass
class DaemonStats:
    started: float = field(default_factory=time.time)
    jobs: dict[str, JobStats] = field(default_factory=dict)
    hook_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def job(self, name: str) -> JobStats:
        return self.jobs.setdefault(name, JobStats())

    def ran(self, name: str, started: datetime, ok: bool, duration: float) -> None:
        with self.lock:
            j = self.job(name)
            j.runs += 1
            j.failures += 0 if ok else 1
            j.last_run = started.timestamp()
            j.last_ok = ok
            j.last_duration = duration

    def scheduled(self, name: str, when: datetime) -> None:
        with self.lock:
            self.job(name).next_run = when.timestamp()

    def hook_failed(self) -> None:
        with self.lock:
            self.hook_failures += 1


STATS = DaemonStats()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def daemon_metrics(stats: DaemonStats | None = None) -> str:
    """Prometheus text lines of the daemon (``pgsafe_daemon_*``), ending in a newline."""
    s = STATS if stats is None else stats
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{labels} {_num(value)}")

    with s.lock:
        jobs = sorted(s.jobs.items())
        lbl = {n: f'{{job="{_label(n)}"}}' for n, _ in jobs}
        family(
            "pgsafe_daemon_start_time_seconds",
            "gauge",
            "When the daemon started (Unix time).",
            [("", s.started)],
        )
        family(
            "pgsafe_daemon_job_runs_total",
            "counter",
            "Runs of each job since the daemon started.",
            [(lbl[n], j.runs) for n, j in jobs],
        )
        family(
            "pgsafe_daemon_job_failures_total",
            "counter",
            "Runs of each job that did not succeed since the daemon started.",
            [(lbl[n], j.failures) for n, j in jobs],
        )
        family(
            "pgsafe_daemon_job_last_run_timestamp_seconds",
            "gauge",
            "When the last run of each job started (Unix time).",
            [(lbl[n], j.last_run) for n, j in jobs if j.last_run is not None],
        )
        family(
            "pgsafe_daemon_job_last_success",
            "gauge",
            "1 if the last run of each job succeeded, else 0.",
            [(lbl[n], 1.0 if j.last_ok else 0.0) for n, j in jobs if j.last_ok is not None],
        )
        family(
            "pgsafe_daemon_job_last_duration_seconds",
            "gauge",
            "How long the last run of each job took.",
            [(lbl[n], j.last_duration) for n, j in jobs if j.last_duration is not None],
        )
        family(
            "pgsafe_daemon_job_next_run_timestamp_seconds",
            "gauge",
            "When each job runs next (Unix time).",
            [(lbl[n], j.next_run) for n, j in jobs if j.next_run is not None],
        )
        family(
            "pgsafe_daemon_hook_failures_total",
            "counter",
            "Hooks that failed or timed out since the daemon started.",
            [("", s.hook_failures)],
        )
    return "\n".join(out) + "\n"
