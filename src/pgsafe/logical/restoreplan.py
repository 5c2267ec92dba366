"""The plan of a logical restore, checked against the target server before anything changes.

What is asked (:class:`RestoreRequest`) meets what the backup holds and what the target
server has: does the target database exist (and should it), is it empty, are the
requested tables in the backup, would ``--clean`` reach beyond them.  A plan that would
overwrite something the user did not ask to replace is refused (exit 2) here; the steps
the plan shows are those :mod:`pgsafe.logical.restore` then takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pgsafe.errors import BadInput, NotFound
from pgsafe.logical import clean as clean_mod
from pgsafe.logical import fingerprint as fp
from pgsafe.logical.tables import Table, match
from pgsafe.logical.tree import Tree
from pgsafe.models.backup import TablePrints
from pgsafe.pg.connect import Connection, connect
from pgsafe.pg.conninfo import ConnOptions, dbname_of
from pgsafe.repo.catalog import Manifest


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


def backup_tables(m: Manifest) -> list[Table]:
    return [Table(s, n) for s, n in m.options.get("tables", [])]


def backup_tree(m: Manifest) -> Tree | None:
    """The partition and inheritance tree recorded with the backup (None before 0.2)."""
    docs = m.options.get("relations")
    return Tree.from_json(docs) if docs else None


def checked_relations(m: Manifest, expected: TablePrints) -> list[Table]:
    """The backup's tables and materialized views that have a fingerprint entry."""
    views = [
        Table(str(r["schema"]), str(r["name"]))
        for r in m.options.get("relations", [])
        if r.get("kind") == "m"
    ]
    return [t for t in [*backup_tables(m), *views] if t.qualified in expected]


def is_superuser(conn: Connection) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _expand(tree: Tree, chosen: list[Table], in_backup: list[Table]) -> list[Table]:
    """A partitioned table brings its partitions (those the backup holds); an inheritance
    parent is itself alone."""
    held = {(t.schema, t.name) for t in in_backup}
    out = {(t.schema, t.name) for t in chosen}
    for t in chosen:
        out |= {(p.schema, p.name) for p in tree.partitions(t) if (p.schema, p.name) in held}
    return [Table(s, n) for s, n in sorted(out)]


def _non_empty(conn: Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    ).fetchone()
    return int(row[0]) if row else 0


def _db_exists(conn: Connection, name: str) -> bool:
    return bool(
        conn.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)).fetchone()
    )


def plan(req: RestoreRequest) -> RestorePlan:
    """Check everything against the target server; raise before anything changes.

    The refusals come in order, each needing the facts the ones before established:
    what the backup can do (:func:`_refuse_unsupported`), the requested tables
    (:func:`_requested`), the target database (:func:`_create_or_refuse`), then what is
    in it (:func:`_check_existing`).  The steps it shows are :func:`_restore_steps`."""
    m = req.backup
    _refuse_unsupported(req)
    if m.format == "all":
        return _plan_all(req)
    target = dbname_of(req.conn.conninfo()) if req.conn.dbname else None
    target = target or m.database
    assert target is not None
    in_backup = backup_tables(m)
    chosen = _requested(req, in_backup)
    with connect(req.conn.conninfo("postgres")) as conn:
        server = f"{conn.info.host}:{conn.info.port}"
        exists = _db_exists(conn, target)
    create = _create_or_refuse(req, target, server, exists=exists)
    present: list[Table] = []
    steps: list[str] = []
    if create:
        steps.append(f'create database "{target}" (template0)')
        if m.object("database") is not None:
            steps[-1] += (
                " with the backup's encoding and locale; after the restore, its owner, "
                "settings, comment and privileges"
            )
        tree = backup_tree(m)
        if chosen and tree is not None:
            chosen = _expand(tree, chosen, in_backup)
    else:
        chosen, present = _check_existing(req, target, chosen, in_backup)
    steps += _restore_steps(req, chosen, present)
    steps.append("compare the restored tables' fingerprints with the backup's")
    return RestorePlan(
        m.id, m.format or "", target, server, create, req.clean, chosen, req.jobs, steps
    )


def _refuse_unsupported(req: RestoreRequest) -> None:
    """What this backup's kind and format cannot do, whatever the target holds."""
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


def _requested(req: RestoreRequest, in_backup: list[Table]) -> list[Table]:
    """The tables named with -t, each of which the backup must hold (none: all)."""
    chosen: list[Table] = []
    for name in req.tables:
        found = match(name, in_backup)
        if not found:
            raise NotFound(
                f"table {name!r} is not in backup {req.backup.id}",
                hint=f"`pgsafe show {req.backup.id} --contents` lists what it holds",
            )
        chosen += [t for t in found if t not in chosen]
    return chosen


def _create_or_refuse(req: RestoreRequest, target: str, server: str, *, exists: bool) -> bool:
    """Whether the target database is to be created; refused when it exists and
    --create without --clean asks for a new one, or is missing without --create."""
    if req.create:
        if exists and not req.clean:
            raise BadInput(
                f"database {target!r} already exists",
                hint="choose a new name with -d, or add --clean to replace its contents",
            )
        return not exists
    if not exists:
        raise NotFound(
            f"database {target!r} does not exist on {server}",
            hint="add --create to create it",
        )
    return False


def _check_existing(
    req: RestoreRequest, target: str, chosen: list[Table], in_backup: list[Table]
) -> tuple[list[Table], list[Table]]:
    """Into an existing database: the chosen tables (with their partitions) and those of
    them already there.  Refused: a table already there, or a whole restore into a
    database that is not empty, without --clean; a --clean that would reach beyond
    the chosen tables (:func:`pgsafe.logical.clean.refuse_side_effects`)."""
    with connect(req.conn.conninfo(target)) as conn:
        if not chosen:
            n = _non_empty(conn)
            if n and not req.clean:
                raise BadInput(
                    f"database {target!r} is not empty ({n} relations)",
                    hint="add --clean to replace its objects, or --create -d NEWNAME "
                    "to restore into a new database",
                )
            return chosen, []
        # a backup from before pgsafe recorded the tree: the target's own tree
        tree = backup_tree(req.backup) or Tree.read(conn)
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
            superuser = is_superuser(conn)
            clean_mod.refuse_side_effects(
                clean_mod.side_effects(conn, present, chosen, replica=superuser), superuser
            )
        return chosen, present


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
    return RestorePlan(
        m.id, "all", "(cluster)", server, True, req.clean, [], req.jobs, steps,
        databases=dbs, modes=modes,
    )  # fmt: skip
