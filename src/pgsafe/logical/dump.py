"""``pgsafe dump``: pg_dump (or pg_dumpall for globals) streamed into the repository.

Each database is dumped from an exported snapshot; the data fingerprint of every
dumped table is computed in that same snapshot while pg_dump runs, so a restore can
be proven against exactly what was dumped.

Locks (see :mod:`pgsafe.logical.dumplocks`): the fingerprint reads no table before
pg_dump holds its ACCESS SHARE lock on every dumped table.  Reading earlier made a
cycle PostgreSQL cannot see: the fingerprint's locks last until pg_dump ends, a DDL
statement queues behind them, pg_dump queues behind the DDL.  pg_dump waits at most
``--lock-wait-timeout`` for a lock, and so does the fingerprint, so a concurrent
schema change makes the dump wait, or fail with a message naming the cause, never
hang.  pg_dump's own compression is off: the
stream is compressed (and encrypted, if the repository says so) once, on its way to
storage.  The manifest is written last;
an interrupted dump leaves no listed backup.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg

from pgsafe import __version__, clock
from pgsafe.errors import BadInput
from pgsafe.logical import dbprops, pgdump
from pgsafe.logical import dumplocks as locks
from pgsafe.logical import fingerprint as fp
from pgsafe.logical.dumprequest import DumpRequest as DumpRequest
from pgsafe.logical.objectnames import stem
from pgsafe.logical.stream import store_stream
from pgsafe.logical.tables import Table, default_sequences, list_tables, resolve
from pgsafe.logical.tree import Tree
from pgsafe.models.backup import MATVIEW, Fingerprints, JsonObject, TablePrints
from pgsafe.models.kinds import BackupKind
from pgsafe.pg.connect import Connection, connect, server_major
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.progress import NullProgress, Progress
from pgsafe.repo.catalog import Manifest, StoredObject
from pgsafe.repo.repository import Repository

log = logging.getLogger(__name__)

FORMATS = ("custom", "plain", "directory")
_SUFFIX = {"custom": ".dump", "plain": ".sql", "directory": ".dir"}


@dataclass
class _Db:
    """What one database's dump produced."""

    objects: list[StoredObject] = field(default_factory=list)
    fingerprint: TablePrints = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)


def validate(req: DumpRequest) -> None:
    if req.format not in FORMATS:
        raise BadInput(f"unknown format {req.format!r}", hint="use custom, plain or directory")
    if req.schema_only and req.data_only:
        raise BadInput("--schema-only and --data-only exclude each other")
    if req.jobs < 1:
        raise BadInput("-j must be at least 1")
    if not req.lock_wait_timeout > 0:
        raise BadInput("--lock-wait-timeout must be a positive number of seconds")
    if req.jobs > 1 and req.format != "directory" and not req.all_databases:
        raise BadInput(
            f"-j {req.jobs} needs the directory format (pg_dump dumps in parallel only there)",
            hint="add --format directory, or drop -j",
        )
    if req.statistics and (req.schema_only or req.data_only):
        raise BadInput(
            "--statistics goes with the data and the definitions together",
            hint="drop --statistics, or --schema-only/--data-only",
        )
    if req.all_databases and (req.tables or req.exclude or req.schema_only or req.data_only):
        raise BadInput("--all dumps whole databases; -t/-T/--schema-only/--data-only do not apply")
    if req.all_databases and req.format != "custom":
        raise BadInput("--all stores each database in the custom format; drop --format")


def dump(
    repo: Repository,
    req: DumpRequest,
    *,
    progress: Progress | None = None,
) -> Manifest:
    validate(req)
    repo.encoder().check_encode()  # a missing key is refused before anything runs
    prog = progress or NullProgress()
    conninfo = req.conn.conninfo()
    started = clock.now()
    with connect(conninfo) as conn:
        major = server_major(conn)
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        pgdump.check_statistics(req, major)
        sysid = _system_identifier(conn)
        dbname = str(conn.info.dbname)
        roles_sql = "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"
        roles = [str(r[0]) for r in conn.execute(roles_sql)]
        databases: list[str] = []
        tables = list_tables(conn)
        tree = Tree.read(conn)
        selected = [] if req.all_databases else _select(tables, req, tree)
        if (req.tables or req.exclude) and not req.all_databases:
            req = replace(req, context=tuple(tree.context(selected)))
        if req.tables and not req.all_databases:
            # pg_dump -t leaves out the sequences the tables' defaults need
            req = replace(req, sequences=tuple(default_sequences(conn, selected)))
        if req.all_databases:
            databases = [
                str(r[0])
                for r in conn.execute(
                    "SELECT datname FROM pg_catalog.pg_database"
                    " WHERE datallowconn AND NOT datistemplate ORDER BY 1"
                )
            ]
    if req.exclude and not req.all_databases:
        excluded = tree.expand(resolve(req.exclude, tables, "table to exclude"))
        req = replace(req, excluded=tuple(excluded))
    fmt = "all" if req.all_databases else req.format
    with contextlib.ExitStack() as held:
        with repo.lock("ids"):
            backup_id = repo.new_id(started, "all" if req.all_databases else dbname, fmt)
            held.enter_context(repo.in_use(backup_id))  # expire leaves it alone meanwhile
            repo.storage.put(repo.object_key(backup_id, "in-progress"), [b"pgsafe dump\n"])
        return _dump_into(
            repo,
            req,
            backup_id,
            started,
            prog,
            conninfo,
            dbname,
            major,
            version,
            sysid,
            roles,
            databases,
            selected,
            fmt,
            tree,
        )


def _dump_into(
    repo: Repository,
    req: DumpRequest,
    backup_id: str,
    started: datetime,
    prog: Progress,
    conninfo: str,
    dbname: str,
    major: int,
    version: str,
    sysid: str | None,
    roles: list[str],
    databases: list[str],
    selected: list[Table],
    fmt: str,
    tree: Tree,
) -> Manifest:
    log.info("dump %s: begin", backup_id)
    prefix = repo.backup_prefix(backup_id)
    try:
        result = _Db()
        db_tables: dict[str, list[list[str]]] = {}
        if req.all_databases:
            result.objects.append(pgdump.dump_globals(repo, backup_id, conninfo, major, req, prog))
            for db in databases:
                one = _dump_one(repo, backup_id, req.conn.conninfo(db), db, major, req, None, prog)
                result.objects += one.objects
                result.fingerprint.update({f"{db}/{k}": v for k, v in one.fingerprint.items()})
                db_tables[db] = [[t.schema, t.name] for t in one.tables]
        else:
            result = _dump_one(repo, backup_id, conninfo, dbname, major, req, selected, prog)
        manifest = Manifest(
            id=backup_id,
            kind=BackupKind.LOGICAL,
            server=repo.server,
            status="ok",
            started_at=clock.iso(started),
            finished_at=clock.iso(clock.now()),
            database=None if req.all_databases else dbname,
            format=fmt,
            label=req.label,
            options={
                "tables": [[t.schema, t.name] for t in result.tables],
                "context_tables": [[t.schema, t.name] for t in req.context],
                "relations": [] if req.all_databases else _relations(tree, result, req),
                "table_args": list(req.tables),
                "exclude_args": list(req.exclude),
                "schema_only": req.schema_only,
                "data_only": req.data_only,
                "jobs": req.jobs,
                "databases": databases,
                "db_tables": db_tables,
                "roles": roles,
                "fingerprint_method": fp.method_for(major),
                "statistics": pgdump.carries_statistics(req, major),
            },
            pg_version=version,
            pg_major=major,
            system_identifier=sysid,
            objects=result.objects,
            fingerprint={"": result.fingerprint} if not req.all_databases else _split(result),
            pgsafe_version=__version__,
        )
        repo.save(manifest)
        repo.storage.delete(repo.object_key(backup_id, "in-progress"))
    except BaseException:
        prog.close()
        _discard(repo, prefix)
        raise
    prog.close()
    log.info("dump %s: end, %d bytes stored", backup_id, manifest.size_bytes)
    return manifest


def _companions(
    repo: Repository,
    backup_id: str,
    conninfo: str,
    dbname: str,
    major: int,
    req: DumpRequest,
    selected: list[Table],
    prog: Progress,
) -> list[StoredObject]:
    """What a one-database dump keeps beside the dump itself: the database's own
    properties, a plain dump's DROP statements, a data-only dump's schema."""
    objs: list[StoredObject] = []
    if not req.tables and not req.data_only:
        # the database's own owner, settings, comment and privileges (pg_dump --create)
        data = dbprops.capture(conninfo, major, locks.timeout_ms(req.lock_wait_timeout))
        objs.append(
            store_stream(
                repo, backup_id, f"{stem(dbname)}.database.sql", io.BytesIO(data), role="database"
            )
        )
    if req.format == "plain" and not req.data_only:
        objs.append(
            pgdump.store_clean_script(repo, backup_id, conninfo, dbname, major, req, selected)
        )
    if req.data_only:
        # A data-only dump cannot be restored into an empty database: keep the schema of
        # the same tables beside it, used only by `verify` to prove the data restores.
        schema_req = replace(req, format="custom", schema_only=True, data_only=False)
        argv = [find_program("pg_dump", major), "--no-password", "-Fc", "-Z0"]
        argv += pgdump.selection_args(schema_req, selected)
        clean, env = tool_env(conninfo)
        argv += ["-d", clean or ""]
        name = f"{stem(dbname)}.schema.dump"
        objs.append(
            pgdump.run_streaming(repo, backup_id, argv, env, name, "schema", req, prog, dbname)
        )
    return objs


def _relations(tree: Tree, result: _Db, req: DumpRequest) -> list[JsonObject]:
    """The partition and inheritance tree of the dumped tables, for restore -t."""
    keep = {(t.schema, t.name) for t in [*result.tables, *req.context]}
    keep |= {k for k, r in tree.rels.items() if r.kind == "m" and ".".join(k) in result.fingerprint}
    return tree.to_json(keep)


def _split(result: _Db) -> Fingerprints:
    out: Fingerprints = {}
    for key, value in result.fingerprint.items():
        db, _, table = key.partition("/")
        out.setdefault(db, {})[table] = value
    return out


def _discard(repo: Repository, prefix: str) -> None:
    with contextlib.suppress(Exception):
        for key in list(repo.storage.list(prefix)):
            repo.storage.delete(key)


def _system_identifier(conn: Connection) -> str | None:
    try:
        row = conn.execute(
            "SELECT system_identifier FROM pg_catalog.pg_control_system()"
        ).fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def _select(tables: list[Table], req: DumpRequest, tree: Tree) -> list[Table]:
    """The tables whose data the dump holds: a partitioned table brings its partitions."""
    chosen = tree.expand(resolve(req.tables, tables)) if req.tables else list(tables)
    if req.exclude:
        excluded = set(tree.expand(resolve(req.exclude, tables, "table to exclude")))
        chosen = [t for t in chosen if t not in excluded]
    if req.tables and not chosen:
        raise BadInput("-T excludes every table chosen with -t")
    return chosen


@contextlib.contextmanager
def _snapshot(conninfo: str) -> Iterator[tuple[Connection, str]]:
    """A repeatable-read transaction whose snapshot pg_dump imports."""
    conn = connect(conninfo, autocommit=False)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
        assert row is not None
        yield conn, str(row[0])
        conn.rollback()
    finally:
        conn.close()


def _dump_one(
    repo: Repository,
    backup_id: str,
    conninfo: str,
    dbname: str,
    major: int,
    req: DumpRequest,
    selected: list[Table] | None,
    prog: Progress,
) -> _Db:
    """Dump one database. ``selected`` None means a whole-database dump for --all.

    The fingerprint thread shares the exported snapshot's connection and pg_dump's
    "ended"/"failed" events with the dump (see :mod:`pgsafe.logical.dumplocks`); the
    command line is :func:`_pg_dump_command`, the stored objects :func:`_store`, the
    companion objects :func:`_companions`."""
    whole = selected is None
    fmt = "custom" if whole else req.format
    out = _Db()
    with _snapshot(conninfo) as (snap_conn, snapshot):
        tables = list_tables(snap_conn) if whole else list(selected or [])
        out.tables = tables
        app = locks.application_name()
        argv, env = _pg_dump_command(conninfo, major, snapshot, app, req, fmt, selected)
        fp_result: TablePrints = {}
        fp_error: list[BaseException] = []
        dump_ended = threading.Event()
        dump_failed = threading.Event()
        oids = [] if req.schema_only else locks.lockable_oids(snap_conn, tables)
        views = [] if req.tables or req.data_only else fp.matviews(snap_conn)
        if whole:  # an --all backup lists each database's checked relations
            out.tables = [*tables, *views]

        def take_fingerprint() -> None:
            try:
                if req.schema_only:
                    fp_result.update({t.qualified: fp.EMPTY for t in tables if not t.partitioned})
                    return
                locks.wait_for_dump_locks(conninfo, app, oids, dump_ended)
                if dump_failed.is_set():
                    return  # pg_dump's error is the one to report
                locks.lock_like_dump(snap_conn, oids, req.lock_wait_timeout)
                fp_result.update(
                    fp.fingerprint(
                        snap_conn,
                        [*tables, *views],
                        in_transaction=True,
                        method=fp.method_for(major),
                    )
                )
                if req.exclude:  # a view's query may read rows -T left out: REFRESH differs
                    for name, entry in list(fp_result.items()):
                        if entry.kind == MATVIEW:
                            fp_result[name] = replace(entry, fresh=False)
            except BaseException as exc:  # reported after pg_dump finishes
                fp_error.append(exc)

        worker = threading.Thread(target=take_fingerprint, name="fingerprint")
        worker.start()
        try:
            out.objects += _store(repo, backup_id, argv, env, dbname, req, prog, fmt, whole=whole)
        except BaseException:
            dump_failed.set()
            raise
        finally:
            dump_ended.set()
            worker.join()
        if fp_error:
            raise locks.fingerprint_failure(dbname, fp_error[0])
        out.fingerprint = fp_result
    if not whole:
        out.objects += _companions(
            repo, backup_id, conninfo, dbname, major, req, selected or [], prog
        )
    return out


def _pg_dump_command(
    conninfo: str,
    major: int,
    snapshot: str,
    app: str,
    req: DumpRequest,
    fmt: str,
    selected: list[Table] | None,
) -> tuple[list[str], dict[str, str]]:
    """pg_dump's argv and environment: in the exported ``snapshot``, named ``app`` (so
    that the fingerprint thread finds its locks); ``selected`` None: a whole database."""
    argv = [find_program("pg_dump", major), "--snapshot", snapshot, "--no-password"]
    argv += [f"--lock-wait-timeout={locks.timeout_ms(req.lock_wait_timeout)}"]
    argv += {"custom": ["-Fc", "-Z0"], "plain": ["-Fp"], "directory": ["-Fd", "-Z0"]}[fmt]
    if pgdump.carries_statistics(req, major):
        argv.append("--statistics")
    if selected is None:
        argv.append("--create")
    else:
        argv += pgdump.selection_args(req, selected)
    clean, env = tool_env(conninfo)
    argv += ["-d", clean or ""]
    return argv, {**env, "PGAPPNAME": app}


def _store(
    repo: Repository,
    backup_id: str,
    argv: list[str],
    env: dict[str, str],
    dbname: str,
    req: DumpRequest,
    prog: Progress,
    fmt: str,
    *,
    whole: bool,
) -> list[StoredObject]:
    """Run pg_dump into the repository: the objects of one database's dump."""
    if fmt == "directory":
        return pgdump.dump_directory(repo, backup_id, argv, env, dbname, req, prog)
    suffix = ".dump" if fmt == "custom" else ".sql"
    name = (f"databases/{stem(dbname)}" if whole else stem(dbname)) + suffix
    role = f"db:{dbname}" if whole else "dump"
    label = "all" if whole else dbname
    return [pgdump.run_streaming(repo, backup_id, argv, env, name, role, req, prog, label)]
