"""``pgsafe restore``: plan, then put a logical backup back.

The plan is made first and checked against the target server: does the target
database exist (and should it), is it empty, are the requested tables in the backup.
A plan that would overwrite something the user did not ask to replace is refused
(exit 2) before anything changes.  After the restore, the fingerprints of the restored
tables are compared with those taken at dump time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgsafe.errors import BadInput, NotFound, OperationFailed, ToolFailed
from pgsafe.logical import clean as clean_mod
from pgsafe.logical import dbprops, toolerrors
from pgsafe.logical import fingerprint as fp
from pgsafe.logical import materialize as mat
from pgsafe.logical import single_table as single
from pgsafe.logical.objectnames import stem
from pgsafe.logical.replay import (
    pg_restore,
    pg_restore_args,
    pg_restore_to_file,
    psql,
    psql_clean_then_replay,
)
from pgsafe.logical.tables import Table, match
from pgsafe.logical.tree import Tree
from pgsafe.pg.connect import connect, server_major
from pgsafe.pg.conninfo import ConnOptions, dbname_of
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository

log = logging.getLogger(__name__)

_REPLACE_HINT = (
    "the transaction was rolled back: nothing changed; the backup's rows do not fit the "
    "table as it is now (a constraint, trigger or definition that changed since the dump)"
)
NOT_RESTORED = "not restored: "  # a warning for a statement of a table subset that failed


@dataclass(frozen=True)
class RestoreRequest:
    backup: Manifest
    conn: ConnOptions
    create: bool = False
    clean: bool = False
    tables: tuple[str, ...] = ()
    jobs: int = 1
    dry_run: bool = False
    no_owner: bool = False


@dataclass
class RestorePlan:
    backup_id: str
    format: str
    target: str  # database name, or "(cluster)" for --all
    server: str  # printable, no password
    create_database: bool
    clean: bool
    tables: list[Table]
    jobs: int
    steps: list[str]
    databases: list[str] = field(default_factory=list)
    modes: dict[str, str] = field(default_factory=dict)


@dataclass
class RestoreResult:
    plan: RestorePlan
    checks: list[fp.TableCheck]
    done: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def backup_tables(m: Manifest) -> list[Table]:
    return [Table(s, n) for s, n in m.options.get("tables", [])]


def backup_tree(m: Manifest) -> Tree | None:
    """The partition and inheritance tree recorded with the backup (None before 0.2)."""
    docs = m.options.get("relations")
    return Tree.from_json(docs) if docs else None


def _expand(tree: Tree, chosen: list[Table], in_backup: list[Table]) -> list[Table]:
    """A partitioned table brings its partitions (those the backup holds); an inheritance
    parent is itself alone."""
    held = {(t.schema, t.name) for t in in_backup}
    out = {(t.schema, t.name) for t in chosen}
    for t in chosen:
        out |= {(p.schema, p.name) for p in tree.partitions(t) if (p.schema, p.name) in held}
    return [Table(s, n) for s, n in sorted(out)]


def _is_superuser(conn: Any) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def checked_relations(m: Manifest, expected: dict[str, Any]) -> list[Table]:
    """The backup's tables and materialized views that have a fingerprint entry."""
    views = [Table(s, n) for s, n in _matview_keys(m)]
    return [t for t in [*backup_tables(m), *views] if t.qualified in expected]


def _matview_keys(m: Manifest) -> list[tuple[str, str]]:
    return [
        (str(r["schema"]), str(r["name"]))
        for r in m.options.get("relations", [])
        if r.get("kind") == "m"
    ]


def _non_empty(conn: Any) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    ).fetchone()
    return int(row[0]) if row else 0


def _db_exists(conn: Any, name: str) -> bool:
    return bool(
        conn.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)).fetchone()
    )


def plan(req: RestoreRequest) -> RestorePlan:
    """Check everything against the target server; raise before anything changes.

    Long (~100 lines) on purpose: it is one ordered list of refusals (kind and format
    of the backup, requested tables, target database, emptiness, --clean safety), each
    needing the facts the ones before it established; split, the order would be
    hidden.  The steps it shows are :func:`_restore_steps`."""
    m = req.backup
    if m.kind != "logical":
        raise BadInput(
            f"backup {m.id} is a {m.kind} backup", hint="use `pgsafe recover` for physical backups"
        )
    if req.jobs < 1:
        raise BadInput("-j must be at least 1")
    if m.format == "plain" and req.tables:
        raise BadInput(
            "a plain-format backup cannot restore single tables",
            hint="restore it whole, or take custom-format backups (the default)",
        )
    if m.format == "plain" and req.jobs > 1:
        raise BadInput("a plain-format backup is replayed by psql and cannot use -j")
    if m.format == "all":
        return _plan_all(req)
    target = dbname_of(req.conn.conninfo()) if req.conn.dbname else None
    target = target or m.database
    assert target is not None
    chosen: list[Table] = []
    in_backup = backup_tables(m)
    tree = backup_tree(m)
    if req.tables:
        for name in req.tables:
            found = match(name, in_backup)
            if not found:
                raise NotFound(
                    f"table {name!r} is not in backup {m.id}",
                    hint=f"`pgsafe show {m.id} --contents` lists what it holds",
                )
            chosen += [t for t in found if t not in chosen]
    maint = req.conn.conninfo("postgres")
    steps: list[str] = []
    with connect(maint) as conn:
        server = f"{conn.info.host}:{conn.info.port}"
        exists = _db_exists(conn, target)
    create = False
    if req.create:
        if exists and not req.clean:
            raise BadInput(
                f"database {target!r} already exists",
                hint="choose a new name with -d, or add --clean to replace its contents",
            )
        create = not exists
    elif not exists:
        raise NotFound(
            f"database {target!r} does not exist on {server}",
            hint="add --create to create it",
        )
    present: list[Table] = []
    if create:
        steps.append(f'create database "{target}" (template0)')
        if m.object("database") is not None:
            steps[-1] += (
                " with the backup's encoding and locale; after the restore, its owner, "
                "settings, comment and privileges"
            )
        if chosen and tree is not None:
            chosen = _expand(tree, chosen, in_backup)
    else:
        with connect(req.conn.conninfo(target)) as conn:
            if chosen:
                # a backup from before pgsafe recorded the tree: the target's own tree
                tree = tree or Tree.read(conn)
                chosen = _expand(tree, chosen, in_backup)
                present = fp.existing(conn, chosen)
                if present and not req.clean:
                    raise BadInput(
                        "table "
                        + ", ".join(sorted(t.qualified for t in present))
                        + f" already exists in database {target!r}",
                        hint="add --clean to replace it, or restore into another database",
                    )
                if present:
                    superuser = _is_superuser(conn)
                    clean_mod.refuse_side_effects(
                        clean_mod.side_effects(conn, present, chosen, replica=superuser),
                        superuser,
                    )
            else:
                n = _non_empty(conn)
                if n and not req.clean:
                    raise BadInput(
                        f"database {target!r} is not empty ({n} relations)",
                        hint="add --clean to replace its objects, or --create -d NEWNAME "
                        "to restore into a new database",
                    )
    steps += _restore_steps(req, chosen, present)
    steps.append("compare the restored tables' fingerprints with the backup's")
    return RestorePlan(
        m.id, m.format or "", target, server, create, req.clean, chosen, req.jobs, steps
    )


def _restore_steps(req: RestoreRequest, chosen: list[Table], present: list[Table]) -> list[str]:
    """What the restore will do, as the plan shows it (after any database creation)."""
    m = req.backup
    out: list[str] = []
    tool = "psql (ON_ERROR_STOP, one transaction)" if m.format == "plain" else "pg_restore"
    if chosen:
        names = {(t.schema, t.name) for t in present}
        missing = [t for t in chosen if (t.schema, t.name) not in names]
        if missing:
            out.append(
                f"create {len(missing)} table(s) from {m.id} ({m.format}) with their indexes, "
                "constraints and rows: " + ", ".join(t.qualified for t in missing)
            )
        if present:
            out.append(
                f"replace the rows of {len(present)} existing table(s) in one transaction "
                "(DELETE FROM ONLY each, then the backup's rows; no other table changes): "
                + ", ".join(t.qualified for t in present)
            )
    else:
        clean_note = " after dropping the existing ones (--clean)" if req.clean else ""
        out.append(f"restore every object from {m.id} ({m.format}) with {tool}{clean_note}")
    if req.jobs > 1:
        out.append(f"run {req.jobs} restore jobs in parallel")
    return out


def _plan_all(req: RestoreRequest) -> RestorePlan:
    """Per database: create it; or restore into it where it exists (the ``postgres``
    database of any cluster) and is empty; or, with --clean, replace it."""
    m = req.backup
    if req.tables:
        raise BadInput("single tables cannot be restored from an all-databases backup")
    dbs = list(m.options.get("databases", []))
    blocking: list[str] = []
    steps = ["replay roles and tablespaces (globals); existing roles are kept"]
    modes: dict[str, str] = {}
    with connect(req.conn.conninfo("postgres")) as conn:
        server = f"{conn.info.host}:{conn.info.port}"
        for d in dbs:
            if not _db_exists(conn, d):
                modes[d] = "create"
                continue
            with connect(req.conn.conninfo(d)) as dconn:
                empty = _non_empty(dconn) == 0
            if d == "postgres":
                modes[d] = "into" if empty else "clean-into"
            else:
                modes[d] = "clean-create"
            if (not empty and not req.clean) or (d != "postgres" and not req.clean):
                blocking.append(d)
    if blocking:
        raise BadInput(
            f"database(s) {', '.join(blocking)} already exist on {server}",
            hint="add --clean to drop and recreate them, or restore into another cluster",
        )
    words = {
        "create": "create database {!r} and restore it",
        "into": "restore database {!r} into the existing empty one",
        "clean-into": "replace the objects of database {!r} (--clean)",
        "clean-create": "drop and recreate database {!r}, then restore it (--clean)",
    }
    steps += [words[modes[d]].format(d) for d in dbs]
    steps.append("compare every restored table's fingerprint with the backup's")
    plan = RestorePlan(
        m.id, "all", "(cluster)", server, True, req.clean, [], req.jobs, steps, databases=dbs
    )
    plan.modes = modes
    return plan


def restore(repo: Repository, req: RestoreRequest) -> RestoreResult:
    p = plan(req)
    if req.dry_run:
        return RestoreResult(p, [], False)
    with repo.in_use(req.backup.id):
        return restore_unlocked(repo, req, p)


def restore_unlocked(repo: Repository, req: RestoreRequest, p: RestorePlan) -> RestoreResult:
    """The restore itself; the caller holds the backup's in-use lock."""
    m = req.backup
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
        return _restore_subset(repo, req, p, conninfo, major)
    args = pg_restore_args(p.tables, clean=req.clean, jobs=req.jobs, no_owner=req.no_owner)
    if m.format == "custom":
        obj = m.object("dump")
        assert obj is not None
        if req.jobs > 1:
            with mat.scratch("restore-") as tmp:
                path = tmp / "backup.dump"
                mat.write_file(repo, m, obj, path)
                pg_restore(conninfo, major, [*args, str(path)])
        else:
            pg_restore(conninfo, major, args, stdin=mat.chunks(repo, m, obj))
    elif m.format == "directory":
        with mat.scratch("restore-") as tmp:
            prefix = f"{stem(m.database or '')}.dir/"
            mat.materialize_directory(repo, m, prefix, tmp / "dump")
            pg_restore(conninfo, major, [*args, str(tmp / "dump")])
    else:
        raise OperationFailed(f"unknown backup format {m.format!r}")
    return []


def _create_missing_schemas(conninfo: str, tables: list[Table]) -> None:
    """pg_dump -t dumps tables without their schema; create the missing schemas."""
    with connect(conninfo) as conn:
        for schema in sorted({t.schema for t in tables}):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def _exists_in(conninfo: str) -> Callable[[str], bool]:
    def exists(name: str) -> bool:
        with connect(conninfo) as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])

    return exists


def _restore_subset(
    repo: Repository, req: RestoreRequest, p: RestorePlan, conninfo: str, major: int
) -> list[str]:
    """Part of a database: tables chosen with -t now, or a backup taken with -t.

    Missing tables come back with their indexes, constraints, triggers and owned
    sequences; existing ones (with --clean) have their contents replaced in one
    transaction.  Foreign keys and partition attachments that point at relations
    neither in the backup nor in the target are left out, and other definitions that
    need objects outside the subset (pg_dump -t does not follow dependencies) are
    reported as warnings rather than stopping the restore; the data is then proven by
    the fingerprint comparison.  One function (~90 lines): the scratch folder, the
    archive and the list file it writes live across every step, in this order."""
    warnings: list[str] = []
    m = req.backup
    with mat.scratch("restore-") as tmp:
        if m.format == "custom":
            obj = m.object("dump")
            assert obj is not None
            archive = tmp / "backup.dump"
            mat.write_file(repo, m, obj, archive)
        else:
            archive = tmp / "dump"
            mat.materialize_directory(repo, m, f"{stem(m.database or '')}.dir/", archive)
        with connect(conninfo) as conn:
            present = {t.qualified for t in fp.existing(conn, p.tables or backup_tables(m))}
            row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            superuser = bool((row.fetchone() or [False])[0])
        chosen = p.tables or backup_tables(m)
        missing = [t for t in chosen if t.qualified not in present]
        existing = [t for t in chosen if t.qualified in present]
        context = [Table(s, n) for s, n in m.options.get("context_tables", [])]
        with connect(conninfo) as conn:
            have = {t.qualified for t in fp.existing(conn, context)}
        context = [t for t in context if t.qualified not in have]
        listing, entries = single.read_archive(archive, major)
        skip = single.dangling(entries, single.archive_relations(entries), _exists_in(conninfo))
        warnings += [
            f"left out {e.type} {e.name}: it needs {single.dependency_of(e)}, which is "
            "neither in the backup nor in the target"
            for e in skip
        ]
        if missing:
            keep = set(single.without(listing, skip))
            lines = [
                ln for ln in single.entries_for(listing, entries, missing, context) if ln in keep
            ]
            if not p.tables and not present:  # a -t backup restored whole, nothing there yet
                lines = single.without(listing, skip)
            listfile = tmp / "tables.list"
            listfile.write_text("\n".join(lines) + "\n")
            args = ["--no-password", "-L", str(listfile)]
            if req.jobs > 1:
                args += ["-j", str(req.jobs)]
            err = pg_restore(conninfo, major, [*args, str(archive)], allow_errors=True)
            # A definition on top (trigger, index, policy...) that needs an object outside
            # the subset is left out, saying why; once a table itself failed, every error
            # counts (the others follow from it).
            errs = toolerrors.errors(err)
            failed = any(e.essential for e in errs)
            warnings += [f"{NOT_RESTORED if failed else 'left out, '}{e}" for e in errs]
        if existing:
            listfile = tmp / "data.list"
            listfile.write_text("\n".join(single.data_lines(listing, existing)) + "\n")
            script = tmp / "data.sql"
            pg_restore_to_file(major, ["-a", "-L", str(listfile), str(archive)], script)
            prologue = "SET LOCAL session_replication_role = replica;\n" if superuser else ""
            tree = backup_tree(m)
            with connect(conninfo) as conn:
                kinds = {k: r.kind for k, r in (tree or Tree.read(conn)).rels.items()}
                off, on = clean_mod.trigger_guards(conn, existing, replica=superuser)
            prologue += off + clean_mod.delete_statements(existing, kinds)
            clean, env = tool_env(conninfo)
            argv = [
                find_program("psql", major),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-d",
                clean or "",
                "-c",
                prologue,
                "-f",
                str(script),
                *(["-c", on] if on else []),
            ]
            argv.insert(1, "--echo-errors")
            toolerrors.run_checked(argv, env, None, "psql", hint=_REPLACE_HINT)
    return warnings


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
