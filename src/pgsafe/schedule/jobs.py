"""The ``[[jobs]]``, hook and daemon sections of the config, validated once at load.

Owns the schedule config format::

    on_success = "cmd"        # top level: run after every job that succeeded ...
    on_failure = "cmd"        # ... or failed; the run's JSON record on stdin
    hook_timeout = "30s"      # a hook still running then is killed (default 30s)

    [daemon]
    stop_grace = "30m"        # on SIGTERM, how long the running job may go on (default 30m)

    [[jobs]]
    name = "nightly-dump"     # optional; default derived from the command ("dump", ...)
    schedule = "0 1 * * *"    # cron (UTC); 6 fields = seconds first; @daily, @hourly, ...
    command = "dump -d shop"  # a pgsafe command line (a string, or a list of words)
    args = ["--label", "nightly"]   # optional, appended to the command
    timeout = "6h"            # optional: a run still going then is terminated
    on_success = "cmd"        # optional, overrides the top-level hook for this job
    on_failure = "cmd"

Hooks are top-level keys (not a ``[hooks]`` table), overridable per job.  A hook is a
string (run by ``/bin/sh -c``) or a list of words (run directly).  Every mistake is a
:class:`pgsafe.errors.BadInput` that names the job and the field.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pgsafe.errors import BadInput
from pgsafe.schedule import cron

DEFAULT_HOOK_TIMEOUT = 30.0
DEFAULT_STOP_GRACE = 1800.0
JOB_KEYS = frozenset(
    {"name", "schedule", "command", "args", "timeout", "on_success", "on_failure", "enabled"}
)
DAEMON_KEYS = frozenset({"stop_grace"})
# commands a job may not run: the scheduler itself, and interactive or endpoint commands
FORBIDDEN_COMMANDS = frozenset({"daemon", "schedule", "wal-push", "wal-get", "sandbox", "demo"})
# global flags the scheduler sets itself for every run
RESERVED_FLAGS = frozenset({"--repo", "--server", "--config"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}

_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)

Hook = tuple[str, ...]  # argv; a string hook is ("/bin/sh", "-c", text)
CommandCheck = Callable[[list[str]], str | None]


@dataclass(frozen=True)
class Job:
    name: str
    schedule: cron.CronExpr
    argv: tuple[str, ...]  # the pgsafe command line without global flags
    timeout: float | None = None
    on_success: Hook | None = None
    on_failure: Hook | None = None

    @property
    def display_argv(self) -> tuple[str, ...]:
        """The command with any password in a connection string masked: what is logged,
        recorded in the history and handed to hooks."""
        return tuple(redact(a) for a in self.argv)

    @property
    def command_line(self) -> str:
        return shlex.join(self.display_argv)


@dataclass(frozen=True)
class ScheduleConfig:
    jobs: tuple[Job, ...] = ()
    on_success: Hook | None = None
    on_failure: Hook | None = None
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT
    stop_grace: float = DEFAULT_STOP_GRACE

    def job(self, name: str) -> Job:
        for j in self.jobs:
            if j.name == name:
                return j
        known = ", ".join(j.name for j in self.jobs) or "none"
        raise BadInput(f"no job named {name!r} in the config", hint=f"jobs: {known}")

    def hook_for(self, job: Job, ok: bool) -> Hook | None:
        if ok:
            return job.on_success if job.on_success is not None else self.on_success
        return job.on_failure if job.on_failure is not None else self.on_failure


def redact(text: str) -> str:
    """``text`` with passwords in libpq URIs and ``password=`` settings replaced by ``***``."""
    return _KV_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***\3", text))


def parse_duration(value: object, what: str) -> float:
    """``"30s"``, ``"10m"``, ``"4h"``, ``"1d"``, ``"1w"``, ``"500ms"`` or a number of seconds."""
    if isinstance(value, bool):
        raise BadInput(f'{what} must be a duration like "30s" or "10m", not {value!r}')
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise BadInput(
                f'{what} must be a duration like "30s", "10m", "4h" or "1d", not {value!r}'
            )
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds < 0:
        raise BadInput(f"{what} must not be negative")
    return seconds


def _hook(value: object, what: str) -> Hook | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise BadInput(f"{what} is empty", hint="remove it, or give a command")
        return ("/bin/sh", "-c", value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise BadInput(f"{what} must be a command: a string, or a list of words")


def _words(value: object, what: str) -> list[str]:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise BadInput(f"{what} cannot be split into words: {exc}") from None
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise BadInput(f"{what} must be a string or a list of strings, not {value!r}")


def _derived_name(argv: Sequence[str]) -> str:
    words = [argv[0], *[a.lstrip("-") for a in argv[1:] if a.startswith("--")][:2]]
    base = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", w) for w in words if w)
    return base[:63] or "job"


def _job(index: int, tbl: object, known: frozenset[str] | None, check: CommandCheck | None) -> Job:
    where = f"[[jobs]] #{index + 1}"
    if not isinstance(tbl, dict):
        raise BadInput(f"{where} must be a table")
    name_val = tbl.get("name")
    if name_val is not None:
        if not isinstance(name_val, str) or not _NAME_RE.match(name_val):
            raise BadInput(
                f"{where}: name {name_val!r} is not valid",
                hint="use letters, digits, '.', '_' and '-' (at most 63)",
            )
        where = f"job {name_val!r}"
    unknown = sorted(set(tbl) - JOB_KEYS)
    if unknown:
        raise BadInput(
            f"{where}: unknown key {unknown[0]!r}",
            hint="known keys: " + ", ".join(sorted(JOB_KEYS)),
        )
    if "schedule" not in tbl:
        raise BadInput(f"{where}: schedule is missing", hint='e.g. schedule = "0 1 * * *"')
    if not isinstance(tbl["schedule"], str):
        raise BadInput(f'{where}: schedule must be a string like "0 1 * * *"')
    try:
        expr = cron.parse(tbl["schedule"])
    except BadInput as exc:
        raise BadInput(f"{where}: {exc.message}", hint=exc.hint) from None
    if "command" not in tbl:
        raise BadInput(f"{where}: command is missing", hint='e.g. command = "dump -d shop"')
    argv = _words(tbl["command"], f"{where}: command")
    argv += _words(tbl.get("args", []), f"{where}: args")
    if not argv:
        raise BadInput(f"{where}: command is empty")
    if argv[0].startswith("-"):
        raise BadInput(f"{where}: command must start with a pgsafe command, not {argv[0]!r}")
    if argv[0] in FORBIDDEN_COMMANDS:
        raise BadInput(f"{where}: command {argv[0]!r} cannot run as a job")
    if known is not None and argv[0] not in known:
        raise BadInput(
            f"{where}: unknown pgsafe command {argv[0]!r}",
            hint="jobs run pgsafe commands: dump, backup, verify --latest, drill, expire, ...",
        )
    for a in argv:
        flag = a.split("=", 1)[0]
        if flag in RESERVED_FLAGS:
            raise BadInput(
                f"{where}: command sets {flag}, which the scheduler sets itself",
                hint="put repo, server and config at the top of the config file",
            )
    if check is not None:
        problem = check(argv)
        if problem:
            raise BadInput(f"{where}: command {shlex.join(argv)!r}: {problem}")
    timeout = None
    if tbl.get("timeout") is not None:
        timeout = parse_duration(tbl["timeout"], f"{where}: timeout")
        if timeout <= 0:
            raise BadInput(f"{where}: timeout must be more than 0")
    enabled = tbl.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadInput(f"{where}: enabled must be true or false")
    return Job(
        name=name_val if isinstance(name_val, str) else _derived_name(argv),
        schedule=expr,
        argv=tuple(argv),
        timeout=timeout,
        on_success=_hook(tbl.get("on_success"), f"{where}: on_success"),
        on_failure=_hook(tbl.get("on_failure"), f"{where}: on_failure"),
    )


def parse_config(
    raw: Mapping[str, object],
    *,
    known_commands: frozenset[str] | None = None,
    check: CommandCheck | None = None,
) -> ScheduleConfig:
    """The schedule sections of a whole config file (``Settings.raw``).

    ``known_commands`` (the CLI's command names) and ``check`` (returns a problem with a
    command line, or None) let the CLI validate commands without this package knowing it.
    """
    jobs_raw = raw.get("jobs", [])
    if isinstance(jobs_raw, dict):
        raise BadInput("jobs must be written as [[jobs]] tables (an array), not [jobs]")
    if not isinstance(jobs_raw, list):
        raise BadInput("jobs must be written as [[jobs]] tables")
    jobs: list[Job] = []
    explicit = {t.get("name") for t in jobs_raw if isinstance(t, dict) and t.get("name")}
    seen: set[str] = set()
    for i, tbl in enumerate(jobs_raw):
        if isinstance(tbl, dict) and tbl.get("enabled", True) is False:
            _job(i, tbl, known_commands, check)  # still validated
            continue
        j = _job(i, tbl, known_commands, check)
        if j.name in seen:
            if isinstance(tbl, dict) and tbl.get("name"):
                raise BadInput(f"job {j.name!r}: name is used by another job", hint="rename one")
            n = 2
            while f"{j.name}-{n}" in seen or f"{j.name}-{n}" in explicit:
                n += 1
            j = Job(j.name + f"-{n}", j.schedule, j.argv, j.timeout, j.on_success, j.on_failure)
        seen.add(j.name)
        jobs.append(j)
    daemon = raw.get("daemon", {})
    if not isinstance(daemon, dict):
        raise BadInput("[daemon] must be a table")
    unknown = sorted(set(daemon) - DAEMON_KEYS)
    if unknown:
        raise BadInput(f"[daemon]: unknown key {unknown[0]!r}", hint="known keys: stop_grace")
    hooks = raw.get("hooks")
    if hooks is not None:
        raise BadInput(
            "hooks are top-level keys, not a [hooks] table",
            hint="write on_success = ..., on_failure = ..., hook_timeout = ... at the top",
        )
    hook_timeout = parse_duration(raw.get("hook_timeout", DEFAULT_HOOK_TIMEOUT), "hook_timeout")
    if hook_timeout <= 0:
        raise BadInput("hook_timeout must be more than 0")
    return ScheduleConfig(
        jobs=tuple(jobs),
        on_success=_hook(raw.get("on_success"), "on_success"),
        on_failure=_hook(raw.get("on_failure"), "on_failure"),
        hook_timeout=hook_timeout,
        stop_grace=parse_duration(daemon.get("stop_grace", DEFAULT_STOP_GRACE), "stop_grace"),
    )
