"""``pgsafe verify`` of a logical backup.

1. Re-hash every stored object against the catalog.
2. Restore the backup into a throwaway cluster of the backup's PostgreSQL version.
3. Fingerprint every restored table and compare, table by table, with the
   fingerprint taken in the dump's own snapshot.
4. Record the result in the catalog.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from psycopg import sql

from pgsafe import clock
from pgsafe.cluster.throwaway import throwaway
from pgsafe.errors import NotFound, OperationFailed, PgsafeError, RepositoryReadOnly
from pgsafe.logical import dbprops, replay, toolerrors
from pgsafe.logical import fingerprint as fp
from pgsafe.logical import materialize as mat
from pgsafe.logical import restore as rs
from pgsafe.models.backup import VerificationCheck
from pgsafe.pg.connect import connect
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.pg.olderserver import loading_major
from pgsafe.repo.catalog import Manifest, Verification
from pgsafe.repo.codec.hashing import sha256_stream
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import iter_chunks
from pgsafe.verify.report import VerifyResult

log = logging.getLogger(__name__)


def check_objects(repo: Repository, m: Manifest, result: VerifyResult) -> bool:
    """Re-hash every object, in every repository holding the backup; one check each.

    Returns whether a complete, valid set of objects exists (with several repositories,
    a damaged copy in one is a failed check, and the restore test reads another)."""
    from pgsafe.repo.storage.mirror import Member, MirrorStorage

    members = (
        repo.storage.members
        if isinstance(repo.storage, MirrorStorage)
        else [Member("", repo.storage)]
    )
    usable = True
    for obj in m.objects:
        key = repo.object_key(m.id, obj.name)
        good = 0
        for member in members:
            where = f" in {member.name}" if member.name else ""
            try:
                with member.storage.open(key) as f:
                    digest, size = sha256_stream(iter_chunks(f))
            except NotFound:
                result.add(f"object {obj.name}{where}", False, "missing from the repository")
                continue
            if digest != obj.sha256 or size != obj.size:
                result.add(
                    f"object {obj.name}{where}",
                    False,
                    f"checksum mismatch: stored {size} bytes sha256 {digest[:12]}…, "
                    f"catalog says {obj.size} bytes sha256 {obj.sha256[:12]}…",
                )
            else:
                good += 1
                result.add(f"object {obj.name}{where}", True, f"sha256 matches ({size} bytes)")
        usable = usable and good > 0
    return usable


def verify_logical(repo: Repository, m: Manifest, home: Path, kind: str = "verify") -> VerifyResult:
    started = time.monotonic()
    result = VerifyResult(m.id)
    if check_objects(repo, m, result):
        try:
            with repo.in_use(m.id):
                _restore_test(repo, m, home, result)
            for note in repo.notes:
                result.add("copy used", True, note)
        except PgsafeError as exc:
            hint = f"; hint: {exc.hint}" if exc.hint else ""
            result.add("restore into a throwaway cluster", False, exc.message + hint)
    else:
        result.add("restore into a throwaway cluster", False, "skipped: objects are damaged")
    result.duration_s = time.monotonic() - started
    record(repo, m.id, result, kind)
    return result


def _restore_test(repo: Repository, m: Manifest, home: Path, result: VerifyResult) -> None:
    major, note = m.pg_major, ""
    if m.pg_major:
        tool = "psql" if m.format == "plain" else "pg_restore"
        major, note = loading_major(tool, m.pg_major, creates_database=m.format == "all")
    if note:
        result.add("throwaway cluster's major", True, note)
    with throwaway(home, major) as cluster:
        conn_opts = ConnOptions(dbname=cluster.conninfo())
        _create_roles(cluster.conninfo(), m)
        t0 = time.monotonic()
        warnings: list[str] = []
        if m.format == "all":
            req = rs.RestoreRequest(backup=m, conn=conn_opts, clean=False)
            checks = rs.restore_unlocked(repo, req, rs.plan(req)).checks
        else:
            assert m.database is not None
            target = ConnOptions(dbname=cluster.conninfo(m.database))
            with connect(cluster.conninfo()) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (m.database,)
                ).fetchone()
                if not exists:  # a dump of "postgres" restores into the empty one there
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                            sql.Identifier(m.database)
                        )
                    )
            schema = m.object("schema")
            if schema is not None:  # data-only backup: its schema companion first
                replay.pg_restore(
                    target.conninfo(), cluster.major, ["--exit-on-error", "--single-transaction"],
                    stdin=mat.chunks(repo, m, schema),
                )  # fmt: skip
            req = rs.RestoreRequest(backup=m, conn=target, jobs=2 if m.format == "directory" else 1)
            plan = rs.RestorePlan(m.id, m.format or "", m.database, "throwaway", False, False, [],
                                  req.jobs, [])  # fmt: skip
            warnings = rs.restore_objects(repo, req, plan, target.conninfo())
            expected = m.fingerprint.get("", {})
            tables = rs.checked_relations(m, expected)
            with connect(target.conninfo()) as conn:
                actual = fp.fingerprint_existing(conn, tables, fp.method_of(m.options), expected)
            checks = fp.compare(expected, actual)
        result.add(
            "restore into a throwaway cluster",
            True,
            f"PostgreSQL {cluster.major}, {time.monotonic() - t0:.1f} s",
        )
        _report_warnings(result, warnings)
        props = m.object("database") if m.format != "all" else None
        if props is not None and m.database is not None:
            _, parts = rs.database_properties(repo, m, m.database)
            with connect(cluster.conninfo(m.database)) as conn:
                failed = dbprops.apply(conn, parts)
            result.add(
                "database properties",
                not failed,
                "; ".join(failed) if failed else f"applied: {dbprops.summary(parts)}",
            )
        for c in checks:
            result.add(f"table {c.table}", c.ok, c.detail())
        if not checks:
            result.add("tables", True, "the backup holds no table data")


def _create_roles(conninfo: str, m: Manifest) -> None:
    """The roles the backup's objects belong to, made (NOLOGIN) in the throwaway cluster."""
    with connect(conninfo) as conn:
        for role in m.options.get("roles", []):
            if role != "postgres":
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                ).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))


def _report_warnings(result: VerifyResult, warnings: list[str]) -> None:
    """A table subset's restore warnings as checks: definitions left out on purpose
    (pass), statements that failed (fail)."""
    failed = [w.removeprefix(rs.NOT_RESTORED) for w in warnings if w.startswith(rs.NOT_RESTORED)]
    left_out = [w for w in warnings if not w.startswith(rs.NOT_RESTORED)]
    if left_out:
        # pg_dump -t does not follow dependencies: a table subset may carry foreign keys
        # and partition attachments to relations outside it, left out on purpose.
        result.add(
            "definitions outside the table subset",
            True,
            f"{len(left_out)} left out: " + "; ".join(left_out[:3]),
        )
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        result.add(
            "statements that failed to restore",
            False,
            f"{failed[0]}{more}; hint: {toolerrors.HINT}",
        )


def record(repo: Repository, backup_id: str, result: VerifyResult, kind: str) -> None:
    """Append the verification to the backup's catalog entry (under the catalog lock).

    A repository that cannot be written here (a read-only snapshot or mount) keeps no
    record: a warning says so, and the verification still reports (and exits) by its
    result."""
    try:
        with repo.lock("catalog"):
            m = repo.load(backup_id)
            checks = [VerificationCheck(c.name, c.ok, c.detail) for c in result.checks]
            m.verifications.append(
                Verification(at=clock.iso(clock.now()), ok=result.ok, kind=kind, checks=checks)
            )
            m.verifications = m.verifications[-20:]
            repo.save(m)
    except (RepositoryReadOnly, OperationFailed) as exc:
        log.warning(
            "note: the result was not recorded in the catalog (the repository is read-only "
            "here, or the write failed): %s",
            exc.message,
        )
