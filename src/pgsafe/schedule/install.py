"""``pgsafe schedule install``: the jobs for the system's scheduler instead of the daemon.

* ``--cron``: one ``/etc/cron.d``-style file ``pgsafe-<server>`` (dots become ``_``, as
  run-parts wants), a line per job, ``CRON_TZ=UTC``.  A seconds field cannot be
  expressed in cron and is refused, naming the job.
* ``--systemd``: per job a ``pgsafe-<server>-<job>.service`` (oneshot) and ``.timer``
  with ``OnCalendar=`` lines in UTC converted from the cron expression (crontab's
  "day-of-month OR day-of-week" becomes two ``OnCalendar=`` lines) and
  ``Persistent=true``, so a run missed while the machine was off runs once at boot.

Each line or unit runs ``pgsafe ... schedule run JOB``: the same child process, history
record and hooks as under the daemon, so ``pgsafe status`` sees the runs whichever
scheduler started them.  Files are planned first; an existing file is refused (exit 2)
unless ``force``; then each is written atomically.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgsafe.errors import BadInput, OperationFailed
from pgsafe.schedule.cron import MACROS, CronExpr
from pgsafe.schedule.jobs import Job

CRON_DIR = Path("/etc/cron.d")
SYSTEMD_DIR = Path("/etc/systemd/system")
_SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]


@dataclass(frozen=True)
class InstallFile:
    path: Path
    content: str


@dataclass(frozen=True)
class Invocation:
    """How the installed entries call pgsafe."""

    exe: tuple[str, ...]  # absolute path of pgsafe (or python -m pgsafe)
    config: Path
    repo: str
    server: str

    def argv(self, job: Job) -> list[str]:
        return [
            *self.exe,
            "--config", str(self.config),
            "--repo", self.repo,
            "--server", self.server,
            "schedule", "run", job.name,
        ]  # fmt: skip


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


# -- cron ---------------------------------------------------------------------
def _cron_fields(expr: CronExpr) -> str:
    if expr.text.startswith("@"):
        return MACROS[expr.text.lower()]
    return " ".join(expr.text.split())


def plan_cron(
    jobs: Sequence[Job], inv: Invocation, user: str, out_dir: Path = CRON_DIR
) -> list[InstallFile]:
    if not jobs:
        raise BadInput("the config has no [[jobs]] to install")
    for j in jobs:
        if j.schedule.has_seconds:
            raise BadInput(
                f"job {j.name!r}: schedule {j.schedule.text!r} has a seconds field, "
                "which cron cannot express (it runs at most once a minute)",
                hint="use five fields, or --systemd, or run pgsafe daemon",
            )
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", user):
        raise BadInput(f"bad user name {user!r} for the cron file")
    lines = [
        f"# pgsafe jobs of server {inv.server!r}, written by `pgsafe schedule install --cron`",
        f"# from {inv.config}.  Edit the config and install again rather than this file.",
        "# Schedules are in UTC: cronie honours CRON_TZ; a cron that does not (Debian's)",
        "# uses the system time zone, so run such hosts in UTC or adjust the times.",
        "# Each line runs `pgsafe schedule run JOB`: the run is recorded in the",
        "# repository's history and the on_success / on_failure hooks run.",
        "SHELL=/bin/sh",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "CRON_TZ=UTC",
        "",
    ]
    for j in jobs:
        cmd = shlex.join(inv.argv(j)).replace("%", "\\%")
        lines.append(f"# job {j.name}: pgsafe {j.command_line}".replace("\n", " "))
        lines.append(f"{_cron_fields(j.schedule)} {user} {cmd} --quiet")
    return [InstallFile(out_dir / f"pgsafe-{_safe(inv.server)}", "\n".join(lines) + "\n")]


# -- systemd ------------------------------------------------------------------
def _runs(values: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _component(values: frozenset[int], lo: int, hi: int, width: int = 2) -> str:
    vals = sorted(values)
    if vals == list(range(lo, hi + 1)):
        return "*"
    if len(vals) >= 3:
        step = vals[1] - vals[0]
        if step > 1 and vals == list(range(vals[0], hi + 1, step)):
            return f"{vals[0]:0{width}d}/{step}"
    items = []
    for a, b in _runs(vals):
        if b - a >= 2:
            items.append(f"{a:0{width}d}..{b:0{width}d}")
        else:
            items += [f"{v:0{width}d}" for v in range(a, b + 1)]
    return ",".join(items)


def _weekdays(values: frozenset[int]) -> str:
    order = [d if d != 0 else 7 for d in values]  # Monday first, Sunday last
    items = []
    for a, b in _runs(sorted(order)):
        name_a, name_b = _SYSTEMD_DAYS[a % 7], _SYSTEMD_DAYS[b % 7]
        if b - a >= 2:
            items.append(f"{name_a}..{name_b}")
        else:
            items += [_SYSTEMD_DAYS[v % 7] for v in range(a, b + 1)]
    return ",".join(items)


def oncalendar(expr: CronExpr) -> list[str]:
    """``OnCalendar=`` values (UTC) that fire exactly when ``expr`` does."""
    time = ":".join(
        [
            _component(expr.hours, 0, 23),
            _component(expr.minutes, 0, 59),
            _component(expr.seconds, 0, 59),
        ]
    )
    date = f"*-{_component(expr.months, 1, 12)}-{_component(expr.days, 1, 31)}"
    all_days = len(expr.weekdays) == 7
    if expr.days_restricted and expr.weekdays_restricted:
        # crontab: either the day of month or the weekday matches -> two calendars
        by_weekday = f"*-{_component(expr.months, 1, 12)}-*"
        lines = [f"{date} {time} UTC"]
        if all_days:
            return [f"{by_weekday} {time} UTC"]
        lines.append(f"{_weekdays(expr.weekdays)} {by_weekday} {time} UTC")
        return lines
    prefix = "" if all_days else _weekdays(expr.weekdays) + " "
    return [f"{prefix}{date} {time} UTC"]


def _systemd_quote(argv: Sequence[str]) -> str:
    return shlex.join(argv).replace("%", "%%").replace("$", "$$")


def plan_systemd(
    jobs: Sequence[Job], inv: Invocation, user: str | None, out_dir: Path = SYSTEMD_DIR
) -> list[InstallFile]:
    if not jobs:
        raise BadInput("the config has no [[jobs]] to install")
    files: list[InstallFile] = []
    for j in jobs:
        unit = f"pgsafe-{_safe(inv.server)}-{_safe(j.name)}"
        desc = f"pgsafe job {j.name} of server {inv.server}: pgsafe {j.command_line}"
        service = [
            "[Unit]",
            f"Description={desc.replace('%', '%%')}",
            "After=network-online.target postgresql.service",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
        ]
        if user:
            service.append(f"User={user}")
        service += [
            f"ExecStart={_systemd_quote(inv.argv(j))}",
            "# a stop is safe: a backup becomes visible only once complete",
            "Nice=10",
            "IOSchedulingClass=best-effort",
            "IOSchedulingPriority=7",
        ]
        timer = [
            "[Unit]",
            f"Description=pgsafe job {j.name} of server {inv.server}, "
            f"cron {j.schedule.text.replace('%', '%%')} (UTC)",
            "",
            "[Timer]",
            *[f"OnCalendar={c}" for c in oncalendar(j.schedule)],
            "# a run missed while the machine was off runs once at boot",
            "Persistent=true",
            "AccuracySec=1s",
            f"Unit={unit}.service",
            "",
            "[Install]",
            "WantedBy=timers.target",
        ]
        files.append(InstallFile(out_dir / f"{unit}.service", "\n".join(service) + "\n"))
        files.append(InstallFile(out_dir / f"{unit}.timer", "\n".join(timer) + "\n"))
    return files


# -- writing ------------------------------------------------------------------
def write_files(files: Sequence[InstallFile], *, force: bool) -> None:
    """Write every file atomically (mode 0644); refuse if one exists, unless ``force``."""
    existing = [f.path for f in files if f.path.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise BadInput(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; nothing was written",
            hint="add --force to replace, or --dry-run to see what would be written",
        )
    for f in files:
        if not f.path.parent.is_dir():
            raise BadInput(
                f"folder {f.path.parent} does not exist", hint="create it or choose --output"
            )
    for f in files:
        fd, tmp = tempfile.mkstemp(prefix=f".{f.path.name}.", dir=f.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(f.content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, f.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise OperationFailed(f"cannot write {f.path}: {exc.strerror}") from None
