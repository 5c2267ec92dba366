"""Scheduler commands: ``daemon``, ``schedule list``, ``schedule run``, ``schedule install``."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import sys
from pathlib import Path

import click

from pgsafe.cli.common import emit, global_options, info, open_repo, settings, table
from pgsafe.cli.redaction import ScrubbingFormatter
from pgsafe.config import Settings
from pgsafe.errors import BadInput, PgsafeError
from pgsafe.models.backup import JsonObject
from pgsafe.repo import runs
from pgsafe.schedule import cron, install, jobs
from pgsafe.schedule.daemon import Summary
from pgsafe.schedule.runner import Runner, StopControl
from pgsafe.schedule.serve import install_signals, require_jobs, serve, target_for


# -- config -------------------------------------------------------------------
def _check_command(argv: list[str]) -> str | None:
    """Parse a job's command line with the real CLI: unknown options fail at load."""
    from pgsafe.cli.app import cli

    cmd: click.Command = cli
    args = list(argv)
    path: list[str] = []
    while isinstance(cmd, click.Group):
        if not args:
            return f"'pgsafe {' '.join(path)}' needs a subcommand"
        sub = cmd.get_command(click.Context(cmd), args[0])
        if sub is None:
            return f"unknown command {' '.join([*path, args[0]])!r}"
        path.append(args.pop(0))
        cmd = sub
    try:
        with cmd.make_context(" ".join(path), args, resilient_parsing=False):
            pass
    except click.ClickException as exc:
        return exc.format_message()
    except click.exceptions.Exit:
        return "the command line asks for help or a version, not a job"
    return None


def schedule_config(s: Settings) -> jobs.ScheduleConfig:
    from pgsafe.cli.app import cli

    known = frozenset(cli.list_commands(click.Context(cli)))
    return jobs.parse_config(s.raw, known_commands=known, check=_check_command)


def _setup_log(s: Settings) -> None:
    logger = logging.getLogger("pgsafe.schedule")
    if any(getattr(h, "_pgsafe_schedule", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._pgsafe_schedule = True  # type: ignore[attr-defined]
    handler.setFormatter(ScrubbingFormatter("%(asctime)s pgsafe: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(
        logging.WARNING if s.quiet else logging.DEBUG if s.verbose > 1 else logging.INFO
    )


def _run_doc(r: runs.Run) -> JsonObject:
    return r.to_json()


# -- daemon -------------------------------------------------------------------
@click.command("daemon")
@click.option(
    "--once", is_flag=True, help="run every job that never ran or missed a run, then exit"
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics",
)
@global_options
def daemon_cmd(once: bool, metrics_port: int | None) -> None:
    """Run the scheduled [[jobs]] of the config, one at a time; SIGTERM stops cleanly."""
    s = settings()
    cfg = schedule_config(s)
    require_jobs(cfg, s.config_path)
    repo = open_repo(create=True)
    _setup_log(s)
    summary = serve(
        repo,
        cfg,
        target_for(s),
        once=once,
        metrics_port=metrics_port,
        raw_config=s.raw,
        on_metrics=lambda url: info(f"metrics on {url}"),
    )
    _emit_summary(summary, once)
    if once and summary.failed:
        raise click.exceptions.Exit(1)


def _emit_summary(summary: Summary, once: bool) -> None:
    doc = {
        "ok": summary.failed == 0,
        "runs": [_run_doc(r) for r in summary.runs],
        "missed": [
            {
                "job": m.job,
                "count": m.count,
                "first": m.first.isoformat(),
                "last": m.last.isoformat(),
            }
            for m in summary.missed
        ],
    }
    lines = [
        f"  {r.job}: {r.outcome} in {r.duration_s:.1f} s" + (f" ({r.error})" if r.error else "")
        for r in summary.runs
    ]
    head = "ran" if once else "daemon stopped after"
    text = f"{head} {len(summary.runs)} job run(s), {summary.failed} not successful"
    emit(doc, "\n".join([text, *lines]) if once else text)


# -- schedule group ------------------------------------------------------------
@click.group("schedule")
@global_options
def schedule_group() -> None:
    """The scheduled [[jobs]]: list them, run one now, or install them into cron/systemd."""


@schedule_group.command("list")
@global_options
def list_cmd() -> None:
    """The jobs, their schedules, next run time (UTC) and last run."""
    from pgsafe import clock

    s = settings()
    cfg = schedule_config(s)
    now = clock.now()
    last: dict[str, runs.Run] = {}
    if s.repo:
        try:
            last = runs.last_runs(runs.read_history(open_repo()))
        except PgsafeError:
            last = {}
    docs: list[JsonObject] = []
    rows: list[list[str]] = []
    for j in cfg.jobs:
        nxt = cron.next_after(j.schedule, now)
        r = last.get(j.name)
        docs.append(
            {
                "name": j.name,
                "schedule": j.schedule.text,
                "command": list(j.display_argv),
                "next_run": nxt.isoformat(),
                "last_run": None if r is None else _run_doc(r),
            }
        )
        last_text = "never" if r is None else f"{r.started_at[:19]} {r.outcome}"
        rows.append(
            [j.name, j.schedule.text, nxt.strftime("%Y-%m-%d %H:%M:%S"), last_text, j.command_line]
        )
    headers = ["JOB", "SCHEDULE", "NEXT RUN (UTC)", "LAST RUN", "COMMAND"]
    emit({"jobs": docs}, table(headers, rows) if rows else "no [[jobs]] in the config")


@schedule_group.command("run")
@click.argument("job_name", metavar="JOB")
@global_options
def run_cmd(job_name: str) -> None:
    """Run one job now, as the daemon would (history, hooks); for cron and systemd timers."""
    s = settings()
    cfg = schedule_config(s)
    job = cfg.job(job_name)
    repo = open_repo(create=True)
    _setup_log(s)
    stop = StopControl()
    install_signals(stop)
    runner = Runner(repo, target_for(s), cfg, stop=stop)
    r = runner.run(job, None, "manual")
    if r is None:
        raise click.exceptions.Exit(1)
    text = f"job {r.job} {r.outcome} in {r.duration_s:.1f} s" + (f": {r.error}" if r.error else "")
    emit(_run_doc(r), text)
    if not r.ok:
        code = r.exit_code if r.exit_code in (1, 2, 3) else 1
        raise click.exceptions.Exit(code)


def _pgsafe_exe() -> tuple[str, ...]:
    beside = Path(sys.executable).parent / "pgsafe"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (str(beside.absolute()),)
    found = shutil.which("pgsafe")
    if found:
        return (str(Path(found).absolute()),)
    return (str(Path(sys.executable).absolute()), "-m", "pgsafe")


@schedule_group.command("install")
@click.option("--cron", "use_cron", is_flag=True, help="write a /etc/cron.d file")
@click.option(
    "--systemd", "use_systemd", is_flag=True, help="write systemd .service + .timer pairs"
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="folder to write into (default /etc/cron.d or /etc/systemd/system)",
)
@click.option(
    "--user",
    type=str,
    default=None,
    help="OS user the jobs run as (default: you; for systemd as root: root)",
)
@click.option("--dry-run", is_flag=True, help="print the files, write nothing")
@click.option("--force", is_flag=True, help="replace files that exist")
@global_options
def install_cmd(use_cron: bool, use_systemd: bool, output: Path | None, user: str | None,
                dry_run: bool, force: bool) -> None:  # fmt: skip
    """Write the jobs for the system's scheduler (cron or systemd timers) instead of the daemon."""
    if use_cron == use_systemd:
        raise BadInput("choose one of --cron and --systemd")
    s = settings()
    if s.config_path is None:
        raise BadInput(
            "schedule install needs a config file: the jobs are read from it at each run",
            hint="pass --config FILE (or set PGSAFE_CONFIG)",
        )
    if not s.repo:
        raise BadInput("no repository given", hint="set repo in the config, or pass --repo")
    cfg = schedule_config(s)
    require_jobs(cfg, s.config_path)
    target = target_for(s)
    inv = install.Invocation(
        exe=_pgsafe_exe(), config=s.config_path.absolute(), repo=target.repo_url, server=s.server
    )
    me = pwd.getpwuid(os.geteuid()).pw_name
    if use_cron:
        files = install.plan_cron(cfg.jobs, inv, user or me, output or install.CRON_DIR)
    else:
        unit_user = user or (None if os.geteuid() == 0 else me)
        files = install.plan_systemd(cfg.jobs, inv, unit_user, output or install.SYSTEMD_DIR)
    if not dry_run:
        install.write_files(files, force=force)
    doc = {
        "kind": "cron" if use_cron else "systemd",
        "dry_run": dry_run,
        "files": [{"path": str(f.path), "content": f.content} for f in files],
    }
    if dry_run:
        text = "\n".join(f"# --- {f.path} ---\n{f.content}" for f in files)
        text += "\ndry run: nothing was written"
    else:
        text = "wrote:\n" + "\n".join(f"  {f.path}" for f in files)
        if use_systemd:
            timers = " ".join(f.path.name for f in files if f.path.suffix == ".timer")
            text += f"\nnext: systemctl daemon-reload && systemctl enable --now {timers}"
    emit(doc, text)


COMMANDS: list[click.Command] = [daemon_cmd, schedule_group]
