"""``pgsafe drill``: the full proof of a backup, recorded in the catalog.

For a physical backup:

1. re-hash every stored object (every copy, with several repositories);
   from PostgreSQL 18, ``pg_verifybackup -F t`` proves the stored archive itself
   against PostgreSQL's backup_manifest before anything is extracted;
2. restore it into a throwaway data directory and configure recovery (to the end of
   the archive, or a given target) — without starting it yet;
3. ``pg_verifybackup`` the restored files against PostgreSQL's own backup_manifest
   (every file's size and checksum);
4. start the server, wait until recovery is done and promote it;
5. ``pg_amcheck`` every database (tables and B-tree indexes);
6. fingerprint every table of every database (row counts and content hashes, kept
   with the result), and run the configured ``--check`` queries;
7. stop and remove the cluster, and record the result.

For a logical backup a drill is what ``verify`` does, recorded as a drill.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port
from pgsafe.cluster.throwaway import clusters_dir
from pgsafe.errors import PgsafeError
from pgsafe.logical import fingerprint as fp
from pgsafe.logical.tables import list_tables
from pgsafe.models.backup import Fingerprints
from pgsafe.models.kinds import BackupKind
from pgsafe.pg.connect import connect
from pgsafe.pg.pipe import run_fed
from pgsafe.pg.runner import first_error_line, tool_env
from pgsafe.recovery.targets import TargetRequest
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository
from pgsafe.verify.logical import check_objects, record, verify_logical
from pgsafe.verify.report import VerifyResult


def drill(
    repo: Repository,
    m: Manifest,
    home: Path,
    *,
    target: TargetRequest | None = None,
    checks: list[str] | None = None,
    check_db: str = "postgres",
) -> VerifyResult:
    if m.kind == BackupKind.LOGICAL:
        return verify_logical(repo, m, home, kind="drill")
    started = time.monotonic()
    result = VerifyResult(m.id)
    if check_objects(repo, m, result):
        base = Path(tempfile.mkdtemp(prefix="drill-", dir=clusters_dir(home)))
        base.chmod(0o755)
        try:
            with repo.in_use(m.id):
                _physical(repo, m, base, result, target or TargetRequest(), checks or [], check_db)
        except PgsafeError as exc:
            result.add("drill", False, exc.message)
        finally:
            cluster = LocalCluster(base / "data", major=m.pg_major or 0)
            if cluster.datadir.exists():
                cluster.destroy()
            shutil.rmtree(base, ignore_errors=True)
    else:
        result.add("restore into a throwaway cluster", False, "skipped: objects are damaged")
    result.duration_s = time.monotonic() - started
    record(repo, m.id, result, "drill")
    return result


def _physical(
    repo: Repository,
    m: Manifest,
    base: Path,
    result: VerifyResult,
    target: TargetRequest,
    checks: list[str],
    check_db: str,
) -> None:
    from pgsafe.recovery.execute import (
        RecoverRequest,
        reached_state,
        recover,
        run_checks,
        wait_for_recovery,
    )

    pgdata = base / "data"
    if not _verify_archive(repo, m, base / "archive", result):
        return
    t0 = time.monotonic()
    req = RecoverRequest(
        pgdata=pgdata,
        kind=target.kind,
        value=target.value,
        backup_id=m.id,
        promote=True,
        start=False,
    )
    spool = recover(repo, req).spool
    where = target.describe()
    result.add(
        "restore into a throwaway data directory",
        True,
        f"{time.monotonic() - t0:.1f} s, to {where}",
    )
    if not _verifybackup(repo, m, pgdata, result):
        return
    from pgsafe.recovery import walfetch

    cluster = LocalCluster(pgdata, major=m.pg_major or 0)
    t0 = time.monotonic()
    if spool:
        walfetch.hold(Path(spool))
    cluster.start(port=free_port())
    state = wait_for_recovery(cluster, 3600)
    reached = reached_state(cluster)
    fetch = walfetch.collect(Path(spool)) if spool else None
    wal = (
        f"; WAL: {fetch.segments_fetched} segments fetched, {fetch.segments_from_spool} "
        f"from the prefetch spool, {fetch.wait_s:.1f} s waiting for WAL"
        if fetch is not None
        else ""
    )
    result.add(
        "recovery",
        state == "promoted",
        f"{state} after {time.monotonic() - t0:.1f} s: last transaction "
        f"{reached.last_transaction_time}, LSN {reached.lsn}, "
        f"timeline {reached.timeline}{wal}",
    )
    _amcheck(cluster, result)
    _fingerprints(cluster, result)
    for c in run_checks(cluster, check_db, checks):
        result.add(f"check {c.name}", c.ok, c.detail)
    cluster.stop(mode="immediate")


def _verify_archive(repo: Repository, m: Manifest, scratch: Path, result: VerifyResult) -> bool:
    """The stored archive, proven by PostgreSQL 18+'s pg_verifybackup (not recorded
    before 18: the restored files are proven after the restore on every major)."""
    from pgsafe.recovery.prove import verify_archive

    try:
        ok, detail = verify_archive(repo, m, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if ok is not None:
        result.add("pg_verifybackup of the stored archive", ok, detail)
    return ok is not False


def _verifybackup(repo: Repository, m: Manifest, pgdata: Path, result: VerifyResult) -> bool:
    from pgsafe.recovery.prove import verify_files

    ok, detail = verify_files(repo, m, pgdata)
    result.add("pg_verifybackup", ok is not False, detail)
    return ok is not False


def _databases(cluster: LocalCluster) -> list[str]:
    with connect(cluster.conninfo()) as conn:
        return [
            str(r[0])
            for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
        ]


def _amcheck(cluster: LocalCluster, result: VerifyResult) -> None:
    if cluster.major < 14:  # pg_amcheck (14) calls verify_heapam, which 13's amcheck lacks
        result.add(
            "pg_amcheck",
            True,
            f"skipped: PostgreSQL {cluster.major}'s amcheck has no heap check (verify_heapam "
            "is 14's); the fingerprints below still compare every table",
        )
        return
    argv = [
        cluster.program("pg_amcheck"),
        "-h",
        str(cluster.run_dir),
        "-p",
        str(cluster.port),
        "-U",
        "postgres",
        "--all",
        "--install-missing",
        "--heapallindexed",
    ]
    out, err = run_fed(
        argv, tool_env(None)[1], None, "pg_amcheck", capture_stdout=True, allow_failure=True
    )
    lines = [ln for ln in (out + err).splitlines() if ln.strip()]
    if lines:
        result.add("pg_amcheck", False, first_error_line("\n".join(lines)))
    else:
        result.add(
            "pg_amcheck",
            True,
            f"{len(_databases(cluster))} databases: heap and B-tree indexes consistent",
        )


def _fingerprints(cluster: LocalCluster, result: VerifyResult) -> Fingerprints:
    out: Fingerprints = {}
    total_tables = total_rows = 0
    for db in _databases(cluster):
        with connect(cluster.conninfo(db)) as conn:
            prints = fp.fingerprint(conn, list_tables(conn))
        out[db] = prints
        total_tables += len(prints)
        total_rows += sum(p.rows or 0 for p in prints.values())
    result.fingerprint = out
    result.add("fingerprints", True, f"{total_tables} tables, {total_rows} rows read")
    return out
