"""``pgsafe recover``: plan, then restore a base backup into a data directory, configure
recovery (restore_command through ``wal-get``), optionally start the server, wait until
the target is reached, promote or pause, and run the checks.

Everything that can be refused is refused in :func:`prepare`, before the data directory
is created or touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from pgsafe import runtime
from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port, port_in_use
from pgsafe.errors import BadInput, OperationFailed
from pgsafe.recovery import inventory
from pgsafe.recovery.extract import check_readable, extract
from pgsafe.recovery.plan import Plan, make_plan
from pgsafe.recovery.targets import Target, format_time, parse_lsn, parse_time, parse_xid
from pgsafe.recovery.walscan import CommitScanner
from pgsafe.repo.repository import Repository
from pgsafe.wal import names, server_record


@dataclass
class RecoverRequest:
    pgdata: Path
    kind: str  # time | xid | lsn | name | latest | immediate
    value: str | None = None
    exclusive: bool = False
    backup_id: str | None = None
    timeline: int | None = None
    port: int | None = None
    start: bool = False
    promote: bool = False
    pause: bool = False
    checks: list[str] = field(default_factory=list)
    check_db: str = "postgres"
    dry_run: bool = False
    force: bool = False
    archive: bool = False
    timeout: float = 3600
    config: Path | None = None  # the config whose [[repos]] the repository came from


@dataclass
class RecoverResult:
    pgdata: str
    port: int | None
    target: dict[str, Any]
    plan: dict[str, Any]
    reached: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = False
    started: bool = False
    state: str = "planned"  # planned | prepared | paused | promoted
    notes: list[str] = field(default_factory=list)  # plan notes, fallbacks, archive_mode


def _zone(name: str | None) -> tzinfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    local = datetime.now().astimezone().tzinfo
    return local or UTC


def resolve_target(req: RecoverRequest, repo: Repository, zone: str | None) -> Target:
    inclusive = not req.exclusive
    if req.kind == "time":
        return Target("time", time=parse_time(req.value or "", _zone(zone)), inclusive=inclusive)
    if req.kind == "xid":
        return Target("xid", xid=parse_xid(req.value or ""), inclusive=inclusive)
    if req.kind == "lsn":
        return Target("lsn", lsn=parse_lsn(req.value or ""), inclusive=inclusive)
    if req.kind == "name":
        if not req.value:
            raise BadInput("--name needs a restore point name")
        mark = inventory.load_mark(repo, req.value)
        lsn = int(mark["lsn_int"]) if mark else None
        return Target("name", name=req.value, lsn=lsn, inclusive=inclusive)
    if req.kind in ("latest", "immediate"):
        return Target(req.kind)
    raise BadInput(f"unknown recovery target {req.kind!r}")


def _check_request(req: RecoverRequest) -> None:
    if req.promote and req.pause:
        raise BadInput("--promote and --pause exclude each other")
    if req.kind == "latest" and req.pause:
        raise BadInput(
            "--latest recovers to the end of the archive and then ends recovery; "
            "it cannot pause there",
            hint="give a target (--time, --lsn, ...) with --pause",
        )
    if req.checks and not req.start:
        raise BadInput("--check needs --start (the checks run on the recovered server)")
    if req.port is not None and req.start and port_in_use(req.port):
        raise BadInput(f"port {req.port} is in use", hint="choose another --port or leave it out")


def _check_pgdata(req: RecoverRequest) -> None:
    d = req.pgdata
    if d.exists() and not d.is_dir():
        raise BadInput(f"{d} exists and is not a folder")
    if d.exists() and any(d.iterdir()):
        if not req.force:
            raise BadInput(
                f"data directory {d} is not empty",
                hint="choose an empty or new folder, or pass --force to replace its contents",
            )
        if LocalCluster(d).is_running():
            raise BadInput(f"a PostgreSQL server is running in {d}", hint="stop it first")
    runas.require_reachable(d, runas.server_user(), "data directory")


def plan_json(p: Plan) -> dict[str, Any]:
    return {
        "backup": p.backup.id,
        "backup_finished_at": p.backup.finished_at.isoformat(),
        "timeline": p.timeline,
        "wal_needed": {
            "count": len(p.wal_needed),
            "first": p.wal_needed[0] if p.wal_needed else None,
            "last": p.wal_needed[-1] if p.wal_needed else None,
            "exact": p.wal_exact,
        },
        "window": {
            "from": p.window.start.isoformat(),
            "to": p.window.end.isoformat() if p.window.end else None,
        },
        "notes": p.notes,
    }


def prepare(repo: Repository, req: RecoverRequest) -> tuple[Plan, Target]:
    """Everything that can refuse, before anything is written."""
    _check_request(req)
    inv = inventory.load(repo)
    target = resolve_target(req, repo, inv.timezone)
    record = server_record.load(repo)
    scan = CommitScanner(repo, inv.archive.segment_size, record.pg_major if record else None)
    plan = make_plan(
        target, inv.backups, inv.archive, scan, timeline=req.timeline, backup_id=req.backup_id
    )
    check_readable(repo, repo.load(plan.backup.id))  # a wrong or missing key: exit 2 here
    _check_pgdata(req)
    return plan, target


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def recovery_settings(
    target: Target, plan: Plan, restore_command: str, *, promote: bool, archive: bool
) -> dict[str, str]:
    s = {
        "restore_command": _quote(restore_command),
        "recovery_target_timeline": _quote(str(plan.timeline)),
        "hot_standby": "on",
    }
    if target.kind == "time" and target.time is not None:
        s["recovery_target_time"] = _quote(format_time(target.time))
    elif target.kind == "xid":
        s["recovery_target_xid"] = _quote(str(target.xid))
    elif target.kind == "lsn" and target.lsn is not None:
        s["recovery_target_lsn"] = _quote(names.format_lsn(target.lsn))
    elif target.kind == "name":
        s["recovery_target_name"] = _quote(target.name or "")
    elif target.kind == "immediate":
        s["recovery_target"] = _quote("immediate")
    if target.kind not in ("latest", "immediate"):
        s["recovery_target_inclusive"] = "on" if target.inclusive else "off"
    if target.kind != "latest":
        s["recovery_target_action"] = _quote("promote" if promote else "pause")
    if not archive:
        s["archive_mode"] = "off"
    return s


def _write_config(pgdata: Path, settings: dict[str, str], plan: Plan) -> None:
    for leftover in ("postmaster.pid", "postmaster.opts", "standby.signal"):
        (pgdata / leftover).unlink(missing_ok=True)
    if not (pgdata / "postgresql.conf").exists():  # config kept outside (e.g. Debian's /etc)
        (pgdata / "postgresql.conf").write_text("# written by pgsafe recover\n")
    if not (pgdata / "pg_hba.conf").exists():
        (pgdata / "pg_hba.conf").write_text("local all all trust\n")
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with (pgdata / "postgresql.auto.conf").open("a") as f:
        f.write(f"\n# pgsafe recover {stamp}: backup {plan.backup.id}, {plan.target.describe()}\n")
        for k, v in settings.items():
            f.write(f"{k} = {v}\n")
    (pgdata / "recovery.signal").write_text("")


def restore_command(repo: Repository, req: RecoverRequest) -> str:
    """restore_command through ``wal-get``, proven to decode as the server's OS user.

    An encrypted repository's identity (or passphrase) file is named in the command
    (``PGSAFE_AGE_IDENTITY_FILE=...``); the server's user must be able to read it.
    """
    from pgsafe.config import state_home
    from pgsafe.physical.archiving import is_s3, run_probe
    from pgsafe.physical.endpoint import endpoint_for

    user = runas.server_user()
    ep = endpoint_for(repo, config=req.config, decrypt=True)
    rt = runtime.wal_runtime(state_home(), user, s3=is_s3(repo))
    proc = run_probe(rt, ep, "wal-get", user)
    if proc.returncode != 0:
        who = user.name if user else "the server's OS user"
        files = [v for k, v in ep.env if k.endswith("_FILE")]
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        raise BadInput(
            f"restore_command would fail for the OS user {who!r}: "
            + (lines[0][7:] if lines else proc.stderr.strip()[-300:]),
            hint=(
                f"let {who} read {' '.join(files)} (e.g. chown {who} FILE; chmod 0600 FILE)"
                if files
                else f"let {who} read the repository and its config"
            ),
        )
    return runtime.command_line(
        rt, ep.repo_url, ep.server, "wal-get %f %p", config=ep.config, env=ep.env
    )


def _empty(d: Path) -> None:
    for child in d.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _run_recovery(repo: Repository, req: RecoverRequest, plan: Plan, target: Target) -> str:
    """Create the data directory and write everything; returns the restore_command.

    The restore_command probes (two short processes as the server's OS user, about
    0.2 s) run in a thread while the backup is extracted, when the directory is new or
    empty: should they refuse, the directory is put back as it was (removed, or emptied)
    before the error is raised.  With --force over existing contents they run first, so
    a refusal leaves those contents alone."""
    user = runas.server_user()
    d = req.pgdata
    created = not d.exists()
    had_contents = not created and any(d.iterdir())
    probe: Future[str] | None = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recover-probe")
    try:
        if had_contents:
            restore = restore_command(repo, req)
            _empty(d)  # --force (checked in prepare)
        else:
            probe = pool.submit(restore_command, repo, req)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.chmod(d, 0o700)
            extract(repo, repo.load(plan.backup.id), d)
            if probe is not None:
                restore = probe.result()
            settings = recovery_settings(
                target, plan, restore, promote=req.promote, archive=req.archive
            )
            _write_config(d, settings, plan)
            runas.chown_tree(d, user)
        except BaseException:
            if probe is not None:
                with contextlib.suppress(BaseException):
                    probe.result()  # never leave it running behind the clean-up
            if created:
                shutil.rmtree(d, ignore_errors=True)
            elif probe is not None:  # it was empty: empty again
                with contextlib.suppress(OSError):
                    _empty(d)
            raise
    finally:
        pool.shutdown(wait=True)
    return restore


WAL_GET_NOTE = "pgsafe wal-get: note: "


def wal_get_notes(cluster: LocalCluster) -> list[str]:
    """Fallbacks reported by restore_command (wal-get writes them to the server log)."""
    try:
        text = cluster.log_file.read_text(errors="replace")
    except OSError:
        return []
    out: list[str] = []
    for line in text.splitlines():
        if WAL_GET_NOTE in line:
            note = line.split(WAL_GET_NOTE, 1)[1].strip()
            if note not in out:
                out.append(note)
    return out


def _stop_reason(cluster: LocalCluster) -> str | None:
    try:
        text = cluster.log_file.read_text(errors="replace")
    except OSError:
        return None
    lines = text.splitlines()
    for marker in ("recovery stopping", "redo done at"):
        for line in reversed(lines):
            if marker in line:
                return line.split(":  ", 1)[-1].strip()
    return None


def wait_for_recovery(cluster: LocalCluster, timeout: float) -> str:
    """Wait for 'paused' or 'promoted'; raise with the server's reason when recovery fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not cluster.is_running():
            reason = cluster.last_log_error() or "see the server log"
            raise OperationFailed(
                f"recovery failed: {reason}", hint=f"see the server log {cluster.log_file}"
            )
        try:
            with psycopg.connect(cluster.conninfo(), autocommit=True, connect_timeout=3) as c:
                row = c.execute(
                    "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery()"
                    " THEN pg_get_wal_replay_pause_state() END"
                ).fetchone()
        except psycopg.Error:
            time.sleep(0.2)
            continue
        assert row is not None
        if not row[0]:
            return "promoted"
        if row[1] == "paused":
            return "paused"
        time.sleep(0.2)
    raise OperationFailed(
        f"recovery did not reach its target within {timeout:.0f} s",
        hint=f"the server keeps running; see {cluster.log_file}",
    )


def reached_state(cluster: LocalCluster) -> dict[str, Any]:
    with psycopg.connect(cluster.conninfo(), autocommit=True) as c:
        row = c.execute(
            "SELECT pg_last_xact_replay_timestamp(), pg_last_wal_replay_lsn()::text,"
            " pg_is_in_recovery(),"
            " CASE WHEN pg_is_in_recovery() THEN NULL"
            " ELSE pg_walfile_name(pg_current_wal_lsn()) END,"
            " (SELECT min_recovery_end_timeline FROM pg_control_recovery()),"
            " (SELECT timeline_id FROM pg_control_checkpoint())"
        ).fetchone()
    assert row is not None
    last_xact: datetime | None = row[0]
    replay_tli = int(row[4]) if row[4] else int(row[5])
    tli = int(str(row[3])[:8], 16) if row[3] else replay_tli
    return {
        "last_transaction_time": last_xact.isoformat() if last_xact else None,
        "lsn": row[1],
        "timeline": tli,
        "in_recovery": bool(row[2]),
        "stop_reason": _stop_reason(cluster),
    }


def run_checks(cluster: LocalCluster, dbname: str, checks: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sql in checks:
        try:
            with psycopg.connect(cluster.conninfo(dbname), autocommit=True) as c:
                row = c.execute(sql.encode()).fetchone()
            ok = row is not None and row[0] is True
            detail = "true" if ok else f"returned {row[0] if row else 'no row'!r}"
        except psycopg.Error as exc:
            ok, detail = False, f"error: {str(exc).strip().splitlines()[0]}"
        out.append({"name": sql, "ok": ok, "detail": detail})
    return out


def recover(repo: Repository, req: RecoverRequest) -> RecoverResult:
    plan, target = prepare(repo, req)
    result = RecoverResult(str(req.pgdata), req.port, target.to_json(), plan_json(plan))
    result.notes.extend(plan.notes)
    if req.dry_run:
        result.ok = True
        return result
    _run_recovery(repo, req, plan, target)
    result.state = "prepared"
    result.notes.extend(repo.notes)  # the base backup (or a history file) from another repo
    if not req.archive:
        result.notes.append(
            "archive_mode is off in the recovered cluster (pass --archive to keep archiving)"
        )
    if not req.start:
        result.ok = True
        return result
    cluster = LocalCluster(req.pgdata)
    port = req.port or free_port()
    cluster.start(port=port, wait=True, timeout=int(req.timeout))
    result.port, result.started = port, True
    result.state = wait_for_recovery(cluster, req.timeout)
    result.reached = reached_state(cluster)
    result.notes.extend(n for n in wal_get_notes(cluster) if n not in result.notes)
    result.checks = run_checks(cluster, req.check_db, req.checks)
    result.ok = all(c["ok"] for c in result.checks)
    return result
