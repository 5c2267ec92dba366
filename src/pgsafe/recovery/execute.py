"""``pgsafe recover``: plan, then restore a base backup into a data directory, configure
recovery (restore_command through ``wal-get``), optionally start the server, wait until
the target is reached, promote or pause, and run the checks.

Everything that can be refused is refused in :func:`prepare`, before the data directory
is created or touched.  The data directory is the user's: ``/``, a home folder (or a
folder holding one) and the repository are always refused, and a non-empty folder is
replaced (``--force``) only when it is a stopped PostgreSQL data directory.

With ``--force`` the backup is extracted beside the target (a ``.pgsafe-recover-*``
folder in the same parent, so on the same file system), proven (the stored object's
sha256 at the end of the stream, then ``pg_verifybackup`` against PostgreSQL's
backup_manifest), and only then swapped in: the old folder is renamed away, the new one
renamed in, the old one removed.  Until the swap, a failure removes the new folder and
leaves the target exactly as it was.  When the target is a mount point (it cannot be
renamed), the new folder is made inside it and the entries are moved instead, still
only after the proof.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port, port_in_use
from pgsafe.config import state_home
from pgsafe.endpoint import proven
from pgsafe.errors import BadInput, OperationFailed, PgsafeError, VerificationFailed
from pgsafe.models.kinds import RecoveryState
from pgsafe.pg.programs import find_program
from pgsafe.recovery import inventory, lastrecovery, pgdata, settings, walfetch
from pgsafe.recovery.extract import check_readable, data_object, extract
from pgsafe.recovery.outcome import CheckResult, PlanSummary, ReachedState, TargetSummary
from pgsafe.recovery.plan import Plan, make_plan
from pgsafe.recovery.prove import verify_files
from pgsafe.recovery.targets import Target, parse_lsn, parse_time, parse_xid
from pgsafe.recovery.unprivileged import open_writer
from pgsafe.recovery.walfetch import WalFetch
from pgsafe.recovery.walscan import CommitScanner
from pgsafe.repo.repository import Repository
from pgsafe.wal import server_record


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
    prefetch: bool = True  # restore_command through a prefetch spool (pgsafe.wal.spool)
    spool: Path | None = None  # set by recover: this recovery's spool


@dataclass
class RecoverResult:
    pgdata: str
    port: int | None
    target: TargetSummary
    plan: PlanSummary
    reached: ReachedState | None = None
    checks: list[CheckResult] = field(default_factory=list)
    ok: bool = False
    started: bool = False
    running: bool = False  # the recovered server is running when recover returns
    state: RecoveryState = RecoveryState.PLANNED
    notes: list[str] = field(default_factory=list)  # plan notes, fallbacks, archive_mode
    wal_fetch: WalFetch | None = None  # how the WAL arrived (when recover waited for it)
    spool: str | None = None  # the prefetch spool beside pgdata (removed once waited for)


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
        lsn = mark.lsn_int if mark else None
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


def prepare(repo: Repository, req: RecoverRequest) -> tuple[Plan, Target]:
    """Everything that can refuse, before anything is written."""
    _check_request(req)
    pgdata.check_pgdata(req.pgdata, req.force, repo)  # before the repository is read
    inv = inventory.load(repo)
    target = resolve_target(req, repo, inv.timezone)
    record = server_record.load(repo)
    scan = CommitScanner(repo, inv.archive.segment_size, record.pg_major if record else None)
    if target.kind == "time" and scan.missing is not None:
        raise BadInput(
            f"recovering to a time needs pg_waldump of PostgreSQL {scan.major} "
            f"(it finds the last archived commit): {scan.missing.message}",
            hint=scan.missing.hint,
        )
    plan = make_plan(
        target, inv.backups, inv.archive, scan, timeline=req.timeline, backup_id=req.backup_id
    )
    manifest = repo.load(plan.backup.id)
    check_readable(repo, manifest)  # a wrong or missing key: exit 2 here
    check_server_programs(manifest.pg_major)
    return plan, target


def check_server_programs(major: int | None) -> None:
    """Refuse (exit 2) before anything is written when no server of the backup's major
    is installed: a data directory runs only under the major that wrote it."""
    if major is None:  # written before pgsafe recorded majors: the server will say
        return
    for name in ("postgres", "pg_ctl"):
        try:
            find_program(name, major)
        except OperationFailed as exc:
            raise BadInput(
                f"the backup is of PostgreSQL {major} and {name} {major} is not installed: "
                "a data directory recovers only under its own major",
                hint=f"install postgresql-{major} (or list its bin folder in "
                "PGSAFE_PG_BINDIR); to move to another major, restore a logical backup "
                "(pgsafe dump, then pgsafe restore --create)",
            ) from exc


def restore_command(repo: Repository, req: RecoverRequest) -> str:
    """restore_command through ``wal-get``, proven to decode as the server's OS user.

    An encrypted repository's identity (or passphrase) file is named in the command
    (``PGSAFE_AGE_IDENTITY_FILE=...``); the server's user must be able to read it.
    With a spool, the spool is tried in the shell first (:func:`walfetch.with_shell_path`).
    """
    command = proven.restore_command(state_home(), repo, runas.server_user(), req.config, req.spool)
    return walfetch.with_shell_path(command, req.spool) if req.spool else command


def _configure(
    repo: Repository, req: RecoverRequest, plan: Plan, target: Target, d: Path, restore: str
) -> None:
    conf = settings.recovery_settings(
        target, plan, restore, promote=req.promote, archive=req.archive
    )
    settings.write_config(d, conf, plan)
    runas.chown_tree(d, runas.server_user())


def _run_recovery(repo: Repository, req: RecoverRequest, plan: Plan, target: Target) -> str:
    """Create the data directory and write everything; returns the restore_command.

    A new or empty directory is written in place.  The files are written by the
    server's OS user when we are root (:mod:`pgsafe.recovery.unprivileged`, forked
    before any thread starts).  The restore_command probes (two short processes as the
    server's OS user, about 0.2 s) run in a thread while the backup is extracted: should
    they refuse, the directory is put back as it was (removed, or emptied) before the
    error is raised.  A non-empty directory (--force, checked in prepare) is replaced
    only after the new contents are proven (:func:`_replace`)."""
    d = req.pgdata
    if d.exists() and any(d.iterdir()):
        return _replace(repo, req, plan, target)
    user = runas.server_user()
    created = not d.exists()
    probe: Future[str] | None = None
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recover-probe")
    try:
        try:
            os.chmod(d, 0o700)
            runas.chown(d, user)
            manifest = repo.load(plan.backup.id)
            decoder = repo.decoder(data_object(manifest).name)
            writer = open_writer(d, user, decoder.decompressor())  # before the probe's thread
            try:
                probe = pool.submit(restore_command, repo, req)
            except BaseException:
                writer.abort()
                raise
            extract(repo, manifest, d, writer)
            restore = probe.result()
            _configure(repo, req, plan, target, d, restore)
        except BaseException:
            if probe is not None:
                with contextlib.suppress(BaseException):
                    probe.result()  # never leave it running behind the clean-up
            if created:
                shutil.rmtree(d, ignore_errors=True)
            else:  # it was empty: empty again
                with contextlib.suppress(OSError):
                    pgdata.empty(d)
            raise
    finally:
        pool.shutdown(wait=True)
    return restore


def _replace(repo: Repository, req: RecoverRequest, plan: Plan, target: Target) -> str:
    """--force over a stopped data directory: extract beside it, prove, then swap."""
    restore = restore_command(repo, req)  # a refusal leaves the contents alone
    user = runas.server_user()
    real = Path(os.path.realpath(req.pgdata))
    mount = os.path.ismount(real)
    new = (real if mount else real.parent) / f"{pgdata.STAGING}{secrets.token_hex(6)}"
    new.mkdir(mode=0o700)
    try:
        os.chmod(new, stat.S_IMODE(real.stat().st_mode) & 0o750 | 0o700)
        runas.chown(new, user)
        manifest = repo.load(plan.backup.id)
        extract(repo, manifest, new)  # the stored object's checksum, at the end
        ok, detail = verify_files(repo, manifest, new)
        if ok is False:
            raise VerificationFailed(
                f"backup {manifest.id} does not restore to what PostgreSQL's "
                f"backup_manifest lists: {detail}",
                hint=f"{req.pgdata} was left as it was; recover from another backup "
                "with --backup ID",
            )
        _configure(repo, req, plan, target, new, restore)
        if mount:
            pgdata.swap_inside(real, new)
        else:
            pgdata.swap(real, new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
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
    # pg_get_wal_replay_pause_state() is PostgreSQL 14's; 13 answers a paused replay with
    # pg_is_wal_replay_paused() (a pause there takes effect at once)
    paused = (
        "pg_get_wal_replay_pause_state()"
        if cluster.major >= 14
        else "CASE WHEN pg_is_wal_replay_paused() THEN 'paused' END"
    )
    while time.monotonic() < deadline:
        if not cluster.is_running():
            reason = cluster.last_log_error() or "see the server log"
            raise OperationFailed(
                f"recovery failed: {reason}", hint=f"see the server log {cluster.log_file}"
            )
        try:
            with psycopg.connect(cluster.conninfo(), autocommit=True, connect_timeout=3) as c:
                row = c.execute(
                    f"SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN {paused} END"
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


def reached_state(cluster: LocalCluster) -> ReachedState:
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
    return ReachedState(
        last_transaction_time=last_xact.isoformat() if last_xact else None,
        lsn=row[1],
        timeline=tli,
        in_recovery=bool(row[2]),
        stop_reason=_stop_reason(cluster),
    )


def run_checks(cluster: LocalCluster, dbname: str, checks: list[str]) -> list[CheckResult]:
    out: list[CheckResult] = []
    for sql in checks:
        try:
            with psycopg.connect(cluster.conninfo(dbname), autocommit=True) as c:
                row = c.execute(sql.encode()).fetchone()
            ok = row is not None and row[0] is True
            detail = "true" if ok else f"returned {row[0] if row else 'no row'!r}"
        except psycopg.Error as exc:
            ok, detail = False, f"error: {str(exc).strip().splitlines()[0]}"
        out.append(CheckResult(sql, ok, detail))
    return out


def recover(repo: Repository, req: RecoverRequest) -> RecoverResult:
    plan, target = prepare(repo, req)
    result = RecoverResult(
        str(req.pgdata), req.port, TargetSummary.of(target), PlanSummary.of(plan)
    )
    result.notes.extend(plan.notes)
    if req.dry_run:
        result.ok = True
        return result
    if req.prefetch:
        req.spool = walfetch.new_spool(req.pgdata)
    _run_recovery(repo, req, plan, target)
    if req.spool is not None:
        walfetch.make(req.pgdata, req.spool)
        result.spool = str(req.spool)
    result.state = RecoveryState.PREPARED
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
    if req.spool is not None:
        walfetch.hold(req.spool)
    try:
        cluster.start(port=port, wait=True, timeout=int(req.timeout))
        result.port, result.started = port, True
        result.state = RecoveryState(wait_for_recovery(cluster, req.timeout))
        result.reached = reached_state(cluster)
    except BaseException:
        walfetch.discard(req.spool)
        raise
    if req.spool is not None:
        result.wal_fetch = walfetch.collect(req.spool)
    if result.wal_fetch is not None:  # for info (its last_recovery)
        lastrecovery.record(state_home(), repo.storage.url, repo.server, str(req.pgdata),
                            str(result.state), result.wal_fetch)  # fmt: skip
    result.notes.extend(n for n in wal_get_notes(cluster) if n not in result.notes)
    result.running = True
    result.checks = run_checks(cluster, req.check_db, req.checks)
    result.ok = all(c.ok for c in result.checks)
    if not result.ok:
        _stop_after_failed_checks(cluster, result)
    return result


def _stop_after_failed_checks(cluster: LocalCluster, result: RecoverResult) -> None:
    """A recovered server whose checks failed is not what was asked for: it is stopped
    (nothing should connect to it by mistake) and its data directory is kept for
    inspection; the note says how to start it again."""
    try:
        cluster.stop()
    except PgsafeError as exc:
        result.notes.append(
            f"the checks failed and the recovered server could not be stopped ({exc}); "
            f"it is still running on port {result.port}: pg_ctl -D {result.pgdata} stop"
        )
        return
    result.running = False
    result.notes.append(
        f"the checks failed: the recovered server was stopped; {result.pgdata} is kept for "
        f"inspection (pg_ctl -D {result.pgdata} start starts it again)"
    )
