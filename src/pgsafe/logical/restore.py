"""``pgsafe restore``: plan, then put a logical backup back.

The plan is made first and checked against the target server
(:mod:`pgsafe.logical.restoreplan`): a plan that would overwrite something the user did
not ask to replace is refused (exit 2) before anything changes.  Then this module
restores: a whole database (psql for plain scripts, pg_restore for archives), part of
one (:mod:`pgsafe.logical.restoresubset`), or every database of an all-databases
backup.  After the restore, the fingerprints of the restored tables are compared with
those taken at dump time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from pgsafe.errors import OperationFailed, ToolFailed
from pgsafe.logical import dbprops, indexorder
from pgsafe.logical import fingerprint as fp
from pgsafe.logical import materialize as mat
from pgsafe.logical.objectnames import stem
from pgsafe.logical.replay import (
    pg_restore,
    pg_restore_args,
    pg_restore_to_file,
    psql,
    psql_clean_then_replay,
)
from pgsafe.logical.restoreplan import (
    RestorePlan,
    RestoreRequest,
    backup_tables,
    checked_relations,
    plan,
)
from pgsafe.logical.restoresubset import NOT_RESTORED, restore_subset
from pgsafe.logical.tables import Table
from pgsafe.pg.connect import connect, server_major
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.pg.olderserver import check_loads
from pgsafe.pg.programs import find_program
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository

__all__ = [
    "NOT_RESTORED",
    "RestorePlan",
    "RestoreRequest",
    "RestoreResult",
    "backup_tables",
    "checked_relations",
    "database_properties",
    "plan",
    "restore",
    "restore_objects",
    "restore_unlocked",
]

log = logging.getLogger(__name__)


@dataclass
class RestoreResult:
    plan: RestorePlan
    checks: list[fp.TableCheck]
    done: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def restore(repo: Repository, req: RestoreRequest) -> RestoreResult:
    p = plan(req)
    if req.dry_run:
        return RestoreResult(p, [], False)
    with repo.in_use(req.backup.id):
        return restore_unlocked(repo, req, p)


def restore_unlocked(repo: Repository, req: RestoreRequest, p: RestorePlan) -> RestoreResult:
    """The restore itself; the caller holds the backup's in-use lock."""
    m = req.backup
    _check_loads(req, p)
    if m.format == "all":
        checks = _restore_all(repo, req, p)
        return RestoreResult(p, checks, True, repo.notes)
    target_conninfo = req.conn.conninfo(p.target)
    create_sql, props = database_properties(repo, m, p.target)
    notes: list[str] = []
    if p.create_database:
        notes += _create_database(req.conn.conninfo("postgres"), p.target, create_sql)
    elif props and not p.tables:
        notes.append(
            f"database properties not applied to the existing database {p.target!r}: "
            f"{dbprops.summary(props)} (restore with --create -d NEWNAME to get them)"
        )
    try:
        warnings = notes + restore_objects(repo, req, p, target_conninfo)
    except BaseException:
        if p.create_database:
            _drop_database(req.conn, p.target)
        raise
    expected = m.fingerprint.get("", {})
    names = [t.qualified for t in p.tables] if p.tables else list(expected)
    wanted = {k: v for k, v in expected.items() if k in names}
    with connect(target_conninfo) as conn:
        tables = checked_relations(m, wanted)
        actual = fp.fingerprint_existing(conn, tables, fp.method_of(m.options), wanted)
    if p.create_database and props:  # last: a setting must not get in the restore's way
        with connect(target_conninfo) as conn:
            warnings += dbprops.apply(conn, props)
    return RestoreResult(p, fp.compare(wanted, actual), True, warnings + repo.notes)


def _check_loads(req: RestoreRequest, p: RestorePlan) -> None:
    """Refuse before anything changes when this server is known to reject what the
    client tool that loads the backup writes (``pg.olderserver``)."""
    m = req.backup
    tool = "psql" if m.format == "plain" else "pg_restore"
    creates = m.format == "all" and any(
        p.modes.get(db, "create") in ("create", "clean-create") for db in p.databases
    )
    major = _major(req.conn.conninfo("postgres"))
    check_loads(tool, find_program(tool, major), major, creates_database=creates)


def database_properties(
    repo: Repository, m: Manifest, target: str
) -> tuple[str | None, list[dbprops.Part]]:
    """The backup's CREATE DATABASE (encoding, locale) and database-level entries."""
    obj = m.object("database")
    if obj is None:
        return None, []
    script = b"".join(mat.chunks(repo, m, obj)).decode()
    return dbprops.parts(script, target)


def _create_database(maint: str, name: str, create_sql: str | None) -> list[str]:
    """Create the target database with the backup's encoding and locale where this
    server has them, else with its defaults (and say so)."""
    with connect(maint) as conn:
        if create_sql:
            try:
                conn.execute(sql.SQL(create_sql))
                return []
            except psycopg.Error as exc:
                err = str(exc).splitlines()[0]
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
                )
                return [f"database encoding and locale not applied ({err}): server defaults used"]
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return []


def _drop_database(conn: ConnOptions, name: str) -> None:
    try:
        with connect(conn.conninfo("postgres")) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except Exception as exc:  # pragma: no cover - best effort cleanup
        log.warning("could not drop %s after a failed restore: %s", name, exc)


def _major(conninfo: str) -> int:
    with connect(conninfo) as conn:
        return server_major(conn)


def restore_objects(
    repo: Repository, req: RestoreRequest, p: RestorePlan, conninfo: str
) -> list[str]:
    """Restore the backup's objects into ``conninfo``; return warnings (definitions of a
    table subset that needed objects outside it)."""
    m = req.backup
    major = _major(conninfo)
    if m.options.get("table_args"):
        _create_missing_schemas(conninfo, backup_tables(m))
    if m.format == "plain":
        obj = m.object("dump")
        assert obj is not None
        drops = m.object("clean")
        if req.clean and drops is not None:
            psql_clean_then_replay(conninfo, major, repo, m, drops, obj)
        else:
            psql(conninfo, major, mat.chunks(repo, m, obj), single_transaction=True)
        return []
    if p.tables or m.options.get("table_args"):
        return restore_subset(repo, req, p, conninfo, major)
    args = pg_restore_args(p.tables, clean=req.clean, jobs=req.jobs, no_owner=req.no_owner)
    depths = indexorder.index_depths(conninfo) if req.clean else {}
    if m.format == "custom":
        obj = m.object("dump")
        assert obj is not None
        if req.jobs > 1 or depths:
            with mat.scratch("restore-") as tmp:
                path = tmp / "backup.dump"
                mat.write_file(repo, m, obj, path)
                pg_restore(conninfo, major, [*_drop_order(major, path, depths), *args, str(path)])
        else:
            pg_restore(conninfo, major, args, stdin=mat.chunks(repo, m, obj))
    elif m.format == "directory":
        with mat.scratch("restore-") as tmp:
            prefix = f"{stem(m.database or '')}.dir/"
            path = tmp / "dump"
            mat.materialize_directory(repo, m, prefix, path)
            pg_restore(conninfo, major, [*_drop_order(major, path, depths), *args, str(path)])
    else:
        raise OperationFailed(f"unknown backup format {m.format!r}")
    return []


def _drop_order(major: int, archive: Path, depths: indexorder.Depths) -> list[str]:
    """``-L LIST`` that puts the drops of ``--clean`` in an order PostgreSQL accepts
    (:mod:`pgsafe.logical.indexorder`), or nothing where pg_restore's own order does."""
    if not depths:
        return []
    listing = archive.with_name(archive.name + ".list")
    pg_restore_to_file(major, ["-l", str(archive)], listing)
    text = listing.read_text(encoding="utf-8", errors="surrogateescape")
    listing.write_text(indexorder.reorder(text, depths), encoding="utf-8", errors="surrogateescape")
    return ["-L", str(listing)]


def _create_missing_schemas(conninfo: str, tables: list[Table]) -> None:
    """pg_dump -t dumps tables without their schema; create the missing schemas."""
    with connect(conninfo) as conn:
        for schema in sorted({t.schema for t in tables}):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def _restore_all(repo: Repository, req: RestoreRequest, p: RestorePlan) -> list[fp.TableCheck]:
    m = req.backup
    maint = req.conn.conninfo("postgres")
    major = _major(maint)
    globals_obj = m.object("globals")
    if globals_obj is not None:
        err = psql(
            maint,
            major,
            mat.chunks(repo, m, globals_obj),
            single_transaction=False,
            stop_on_error=False,
        )
        bad = [ln for ln in err.splitlines() if "ERROR" in ln and "already exists" not in ln]
        if bad:
            raise ToolFailed(f"replaying roles and tablespaces failed: {bad[0].strip()}")
    checks: list[fp.TableCheck] = []
    for db in p.databases:
        obj = m.object(f"db:{db}")
        if obj is None:
            raise OperationFailed(f"backup {m.id} has no object for database {db!r}")
        mode = p.modes.get(db, "create")
        args = ["--exit-on-error", "--no-password"]
        if mode in ("create", "clean-create"):
            args.append("--create")
            where = maint
        else:
            where = req.conn.conninfo(db)
        if mode.startswith("clean"):
            args += ["--clean", "--if-exists"]
        if req.jobs > 1:
            with mat.scratch("restore-") as tmp:
                path = tmp / "db.dump"
                mat.write_file(repo, m, obj, path)
                pg_restore(where, major, [*args, "-j", str(req.jobs), str(path)])
        else:
            pg_restore(where, major, args, stdin=mat.chunks(repo, m, obj))
        expected = m.fingerprint.get(db, {})
        with connect(req.conn.conninfo(db)) as conn:
            tables = [Table(s, n) for s, n in m.options.get("db_tables", {}).get(db, [])]
            actual = fp.fingerprint_existing(conn, tables, fp.method_of(m.options), expected)
        checks += [
            fp.TableCheck(f"{db}/{c.table}", c.expected, c.actual)
            for c in fp.compare(expected, actual)
        ]
    return checks
