"""Physical and PITR commands: archive enable, wal-push/wal-get (help only: they run
through the lean entry), backup, mark, info, recover, check."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pgsafe import jsonshape
from pgsafe.cli.common import (
    PORT,
    conn,
    conn_options,
    emit,
    global_options,
    label_option,
    open_repo,
    progress,
    settings,
)
from pgsafe.config import state_home
from pgsafe.models.marks import DamagedMark
from pgsafe.repo.repository import Repository

if TYPE_CHECKING:
    from pgsafe.recovery.execute import RecoverResult
    from pgsafe.recovery.window import InfoReport


def _repo(create: bool = False) -> Repository:
    """The repository (or ``[[repos]]``); a new one takes the configured codec."""
    return open_repo(create=create)


def _repos_config() -> Path | None:
    """The config file, when the repositories come from its ``[[repos]]`` (the WAL
    endpoints then get ``--config`` so that they reach every repository)."""
    s = settings()
    if not s.repo and s.repos and s.config_path is not None:
        return s.config_path.absolute()
    return None


@click.group("archive")
@global_options
def archive_group() -> None:
    """Continuous WAL archiving into the repository."""


@archive_group.command("enable")
@conn_options
@click.option("--restart", is_flag=True, help="restart the server when the change needs it")
@global_options
def archive_enable_cmd(
    dbname: str | None, host: str | None, port: int | None, username: str | None, restart: bool
) -> None:
    """Set wal_level, archive_mode and archive_command (ALTER SYSTEM) for this repository."""
    from pgsafe.physical.archiving import enable

    repo = _repo(create=True)
    r = enable(
        conn(dbname, host, port, username).conninfo(),
        repo,
        state_home(),
        restart=restart,
        config=_repos_config(),
    )

    def text() -> str:
        lines = [f"archive_command = {r.archive_command}"]
        for name, (old, new) in r.changed.items():
            if name != "archive_command":
                lines.append(f"{name}: {old} -> {new}")
        if r.restarted:
            lines.append("server restarted: archiving is on")
        elif r.restart_needed:
            lines.append(
                "restart needed: wal_level/archive_mode take effect after a restart "
                "(pgsafe archive enable --restart, or your service manager)"
            )
        else:
            lines.append("archiving is on (configuration reloaded, no restart needed)")
        return "\n".join(lines)

    emit(asdict(r), text)


def _lean(args: list[str]) -> None:
    from pgsafe.wal.entry import main

    code = main(args)
    if code:
        raise click.exceptions.Exit(code)


def _lean_where() -> list[str]:
    s = settings()
    cfg = _repos_config()
    where = ["--config", str(cfg)] if cfg else ["--repo", s.repo or ""]
    return [*where, "--server", s.server]


@click.command("wal-push", context_settings={"ignore_unknown_options": True})
@click.argument("path")
@global_options
def wal_push_cmd(path: str) -> None:
    """archive_command endpoint: store one WAL file (pgsafe --repo R wal-push %p)."""
    _lean([*_lean_where(), "wal-push", path])


@click.command("wal-get")
@click.argument("name")
@click.argument("dest")
@click.option("--spool", type=click.Path(), help="prefetch spool folder (recover sets it)")
@click.option("--prefetch", type=click.IntRange(0, 256), help="segments kept ahead (0: off)")
@click.option("--prefetch-jobs", type=click.IntRange(1, 32), help="fetching threads")
@global_options
def wal_get_cmd(
    name: str, dest: str, spool: str | None, prefetch: int | None, prefetch_jobs: int | None
) -> None:
    """restore_command endpoint (pgsafe --repo R wal-get [--spool DIR] %f %p); exit 1 when
    not archived.  With --spool, the next segments are fetched ahead into DIR."""
    own = [] if spool is None else ["--spool", spool]
    own += [] if prefetch is None else ["--prefetch", str(prefetch)]
    own += [] if prefetch_jobs is None else ["--prefetch-jobs", str(prefetch_jobs)]
    _lean([*_lean_where(), "wal-get", *own, name, dest])


@click.command("backup")
@conn_options
@click.option(
    "--label", type=str, default=None, callback=label_option, help="a label for the backup"
)
@global_options
def backup_cmd(
    dbname: str | None, host: str | None, port: int | None, username: str | None, label: str | None
) -> None:
    """Physical base backup (pg_basebackup, tar, WAL included) into the repository."""
    from pgsafe import api

    s = settings()
    repo = _repo(create=True)
    req = api.BackupRequest(conn(dbname, host, port, username), label)
    m = api.backup(repo, req, progress=progress("base backup"))
    doc = jsonshape.backup(m)
    summary = (
        f"{m.id}\n  timeline {doc['timeline']}, LSN {doc['start_lsn']} .. {doc['stop_lsn']},"
        f" {m.raw_bytes} bytes -> {m.size_bytes} stored"
    )
    emit(doc, m.id if s.quiet else summary)


@click.command("mark")
@click.argument("name")
@conn_options
@global_options
def mark_cmd(
    name: str, dbname: str | None, host: str | None, port: int | None, username: str | None
) -> None:
    """A named restore point (pg_create_restore_point), recorded in the catalog."""
    from pgsafe import api

    p = api.mark(_repo(), api.MarkRequest(name, conn(dbname, host, port, username)))
    emit(jsonshape.restore_point(p), f"restore point {name!r} at LSN {p.lsn} ({p.time})")


def _info_text(r: InfoReport) -> str:
    from pgsafe.recovery.window import WalRange

    lines = [f"server {r.server} (system identifier {r.system_identifier}) in {r.repo}"]
    if r.pg_major is not None:
        lines.append(f"PostgreSQL {r.pg_major}; its tools:")
        for tool in r.tools:
            lines.append(f"  {'✓' if tool.found else '✗'} {tool.name}: {tool.detail}")
            if tool.fix:
                lines.append(f"      fix: {tool.fix}")
    for t in r.timelines:
        lines.append(f"timeline {t.timeline}" + (
            f" (from timeline {t.parent.timeline} at {t.parent.switch_lsn})"
            if t.parent else ""))  # fmt: skip
        for b in t.backups:
            lines.append(f"  backup {b.id}  ended {b.finished_at}  LSN {b.stop_lsn}")
        w = t.wal
        if isinstance(w, WalRange) and w.count:
            lines.append(f"  WAL {w.first} .. {w.last} ({w.count} segments)")
        elif w.count:  # a timeline whose history file is missing (listed as its gap)
            lines.append(f"  WAL {w.count} segments")
        else:
            lines.append("  WAL none archived")
        if t.recoverable_from:
            lines.append(f"  recoverable {t.recoverable_from} .. {t.recoverable_to}")
        else:
            lines.append("  recoverable: no point in time yet (a backup, then archived commits)")
        for g in t.gaps:
            what = g.first if g.count == 1 else f"{g.first} .. {g.last}"
            lines.append(f"  GAP: missing {what} ({g.count} segment(s))")
    for m in r.marks:
        if isinstance(m, DamagedMark):
            lines.append(f"restore point {m.name}: DAMAGED ({m.damaged})")
        else:
            lines.append(f"restore point {m.name}: LSN {m.lsn} at {m.time}")
    if r.last_recovery is not None:
        last, f = r.last_recovery, r.last_recovery.wal_fetch
        lines.append(
            f"last recovery (this machine): {last.pgdata}, {last.state} at {last.finished_at}; "
            f"WAL: {f.segments_fetched} segments fetched, {f.segments_from_spool} from the "
            f"prefetch spool, {f.spool_damaged} damaged in it, {f.wait_s:.1f} s waiting for WAL"
        )
    return "\n".join(lines)


@click.command("info")
@global_options
def info_cmd() -> None:
    """Per timeline: base backups, archived WAL, the recoverable window, gaps."""
    from pgsafe import api

    r = api.info(_repo())
    emit(jsonshape.info(r), lambda: _info_text(r))


@click.command("recover")
@click.option("--pgdata", "pgdata", required=True, type=click.Path(), help="data directory")
@click.option("--time", "t_time", help="recover to this time (ISO 8601)")
@click.option("--xid", "t_xid", help="recover to this transaction id")
@click.option("--lsn", "t_lsn", help="recover to this LSN")
@click.option("--name", "t_name", help="recover to this restore point")
@click.option("--latest", "t_latest", is_flag=True, help="everything archived")
@click.option("--immediate", "t_immediate", is_flag=True, help="the end of the base backup")
@click.option("--exclusive", is_flag=True, help="stop just before the target")
@click.option("--backup", "backup_id", help="base backup id (default: newest before target)")
@click.option("--timeline", type=int, help="target timeline (default: latest)")
@click.option("--port", type=PORT, help="port for --start (default: a free one)")
@click.option("--start", is_flag=True, help="start the server and wait for the target")
@click.option("--promote", is_flag=True, help="end recovery at the target (read-write)")
@click.option("--pause", is_flag=True, help="stay paused at the target, read-only")
@click.option("--check", "checks", multiple=True, help="SQL that must return true (repeatable)")
@click.option("--check-db", default="postgres", show_default=True, help="database for --check")
@click.option("--archive", is_flag=True, help="keep archiving on in the recovered cluster")
@click.option("--timeout", type=float, default=3600, show_default=True, help="seconds to wait")
@click.option("--dry-run", is_flag=True, help="print the plan only")
@click.option("--force", is_flag=True, help="replace the contents of a non-empty --pgdata")
@global_options
def recover_cmd(pgdata: str, t_time: str | None, t_xid: str | None, t_lsn: str | None,
                t_name: str | None, t_latest: bool, t_immediate: bool, exclusive: bool,
                backup_id: str | None, timeline: int | None, port: int | None, start: bool,
                promote: bool, pause: bool, checks: tuple[str, ...], check_db: str,
                archive: bool, timeout: float, dry_run: bool, force: bool) -> None:  # fmt: skip
    """Restore a base backup into --pgdata and recover to a target (PITR)."""

    from pgsafe import api
    from pgsafe.errors import VerificationFailed
    from pgsafe.recovery.targets import target_request

    target = target_request(
        time=t_time, xid=t_xid, lsn=t_lsn, name=t_name, latest=t_latest, immediate=t_immediate
    )
    req = api.RecoverRequest(
        pgdata=Path(pgdata), target=target, exclusive=exclusive, backup=backup_id,
        timeline=timeline, port=port, start=start, promote=promote, pause=pause,
        checks=checks, check_db=check_db, dry_run=dry_run, force=force, archive=archive,
        timeout=timeout, config=_repos_config(),
    )  # fmt: skip
    from pgsafe.cli.common import info as say

    repo = _repo()
    if target.kind == "time":  # said before the long work: the time as the server reads it
        from pgsafe.recovery.execute import RecoverRequest, resolve_target
        from pgsafe.recovery.inventory import load

        asked = RecoverRequest(req.pgdata, "time", target.value)
        t = resolve_target(asked, repo, load(repo).timezone)
        assert t.time is not None
        say(f"target time {target.value} = {t.time.astimezone(UTC).isoformat(sep=' ')} (UTC)")
    r = api.recover(repo, req)
    emit(jsonshape.recovery(r), lambda: _recover_text(r))
    if not r.ok:  # the report above is the one document; exit 3 without a second one
        failed = [c.name for c in r.checks if not c.ok]
        click.echo(f"error: {len(failed)} check(s) failed: {'; '.join(failed)}", err=True)
        raise click.exceptions.Exit(VerificationFailed.exit_code)


def _recover_text(r: RecoverResult) -> str:
    p = r.plan
    w = p.wal_needed
    lines = [
        f"target: {r.target.description}" + ("" if r.target.inclusive else " (exclusive)"),
        f"plan: backup {p.backup} (ended {p.backup_finished_at}), timeline {p.timeline}",
        f"  archived WAL needed: {w.count} segment(s)"
        + (f" {w.first} .. {w.last}" if w.count else "")
        + ("" if w.exact else " at most"),
        f"  window from this backup: {p.window.start} .. "
        + (p.window.end or "its end (no commit archived after it yet)"),
    ]
    lines += [f"  note: {n}" for n in r.notes]
    if r.state == "planned":
        lines.append("dry run: nothing was written")
    elif not r.started:
        lines.append(f"{r.pgdata} is ready: start it (pg_ctl -D {r.pgdata} start) to recover")
    if r.reached:
        x = r.reached
        running = "" if r.running else ", stopped"
        lines.append(f"server on port {r.port}: {r.state}{running}")
        lines.append(
            "  last replayed transaction: "
            + (x.last_transaction_time or "none (no commit replayed after the base backup)")
        )
        lines.append(f"  LSN {x.lsn}, timeline {x.timeline}")
        if x.stop_reason:
            lines.append(f"  {x.stop_reason}")
    for c in r.checks:
        lines.append(f"  {'✓' if c.ok else '✗'} {c.name}  ({c.detail})")
    return "\n".join(lines)


@click.command("check")
@conn_options
@click.option("--timeout", type=float, default=60, show_default=True,
              help="seconds to wait for the switched WAL segment")  # fmt: skip
@global_options
def check_cmd(
    dbname: str | None, host: str | None, port: int | None, username: str | None, timeout: float
) -> None:
    """End to end: configuration, tools, repository, archiving working."""
    from pgsafe.physical.health import check

    r = check(
        conn(dbname, host, port, username).conninfo(),
        _repo(),
        state_home(),
        timeout,
        config=_repos_config(),
    )

    def text() -> str:
        lines = []
        for c in r.checks:
            lines.append(f"{'✓' if c.ok else '✗'} {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"    fix: {c.fix}")
        return "\n".join(lines)

    emit({"ok": r.ok, "checks": [asdict(c) for c in r.checks]}, text)
    if not r.ok:
        raise click.exceptions.Exit(1)


COMMANDS: list[click.Command] = [
    archive_group,
    wal_push_cmd,
    wal_get_cmd,
    backup_cmd,
    mark_cmd,
    info_cmd,
    recover_cmd,
    check_cmd,
]
