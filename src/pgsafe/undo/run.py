"""``pgsafe undo`` and ``pgsafe restore-table``: check, recover a throwaway cluster,
plan, and bring the data back into the live database in one transaction.

Everything that can be refused is refused before the live database is changed: a
live server that is not the one the repository records (another system identifier),
a target outside the recoverable window, a transaction that touched nothing (or not
the table named with ``-t``), a table whose columns changed since, and — unless
``--on-conflict`` says what to do — a row a later transaction inserted or changed
again.  Each is exit 2 with what would have worked.
"""

from __future__ import annotations

import time

from pgsafe.cluster.local import LocalCluster
from pgsafe.errors import BadInput, VerificationFailed
from pgsafe.logical.tables import Table, match
from pgsafe.mistakes.model import ChangeKind
from pgsafe.pg.connect import Connection, connect
from pgsafe.recovery.targets import TargetRequest, parse_xid
from pgsafe.repo.repository import Repository
from pgsafe.undo import rows, shape, touched, triggers, wholetable
from pgsafe.undo.model import (
    OnConflict,
    RestoreTableRequest,
    RowAction,
    TableAction,
    TablePlan,
    UndoRequest,
    UndoResult,
)
from pgsafe.undo.throwaway import recovered
from pgsafe.undo.txids import TxIds
from pgsafe.undo.validate import check_server, check_tables, known_mistake
from pgsafe.wal import server_record


def _describe(target: TargetRequest) -> str:
    if target.kind == "name":
        return f"everything since restore point {target.value}"
    if target.kind == "time":
        return f"everything since {target.value}"
    return target.describe()


def _major(repo: Repository) -> int:
    record = server_record.load(repo)
    if record is None:
        raise BadInput(
            f"repository {repo.storage.url} records no server {repo.server!r}",
            hint="take a base backup with WAL archiving first (pgsafe archive enable; "
            "pgsafe backup)",
        )
    return record.pg_major or 0


def _database(live: Connection) -> str:
    row = live.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _kind_text(t: touched.Touched, plan: TablePlan) -> str:
    if t.kind != ChangeKind.DELETE:
        return str(t.kind)
    kinds = []
    if plan.counts.get(RowAction.INSERT) or plan.counts.get(RowAction.CONFLICT):
        kinds.append("delete")
    if plan.counts.get(RowAction.UPDATE) or plan.counts.get(RowAction.REMOVE):
        kinds.append("update")
    return ", ".join(kinds) or "delete"


def _plan_rows(
    before: Connection,
    live: Connection,
    t: touched.Touched,
    ids: TxIds | None,
    temp: str,
) -> tuple[TablePlan, shape.Shape]:
    s = shape.shape(before, live, t.table)
    source = ids if t.kind in (ChangeKind.DELETE, ChangeKind.UPDATE) else None
    rows.copy_rows(before, live, s, temp, source)
    if s.key:
        rows.classify_keyed(live, s, temp, ids, deleted=t.kind != ChangeKind.UPDATE)
    else:
        rows.classify_whole_rows(before, live, s, temp, ids)
    plan = TablePlan(t.table.qualified, TableAction.ROWS, "", list(s.key))
    rows.summarise(live, s, temp, plan)
    removed = rows.count_removed(live, s, temp, ids)
    if removed:
        plan.counts[RowAction.REMOVE] = removed
    plan.kind = _kind_text(t, plan)
    return plan, s


def undo(repo: Repository, req: UndoRequest) -> UndoResult:
    """See the module doc; a refused plan comes back with ``refused`` set."""
    started = time.monotonic()
    if req.target.kind not in ("xid", "time", "name"):
        raise BadInput("undo needs a transaction id, --time or --name")
    major = _major(repo)
    xid = parse_xid(req.target.value or "") if req.target.kind == "xid" else None
    conninfo = req.conn.conninfo()
    with connect(conninfo) as live:
        check_server(repo, live)
        db = _database(live)
    mistake = known_mistake(repo, xid, db, conninfo)
    target = req.target
    if mistake is not None and mistake.xid != xid:  # a subtransaction's id was given
        xid, target = mistake.xid, TargetRequest("xid", str(mistake.xid))
    ids = TxIds.of(xid, mistake) if xid is not None else None
    what = f"transaction {xid}" if xid is not None else _describe(target)
    check_tables(mistake, req.tables, what)
    result = UndoResult(_describe(target), db, xid, dry_run=req.dry_run)
    with (
        recovered(repo, target, db, exclusive=True, major=major, timeout=req.timeout) as (
            cluster,
            stop,
        ),
        connect(cluster.conninfo(db)) as before,
        connect(conninfo, autocommit=False) as live,
    ):
        before.execute(shape.SESSION)
        live.execute(shape.SESSION)
        if ids is not None:
            found = touched.by_transaction(before, live, ids, stop.locked, mistake)
        else:
            found = touched.since_target(before, live, req.tables)
        if not found:
            raise BadInput(
                f"{what} deleted, changed, truncated or dropped nothing in database {db}",
                hint="`pgsafe mistakes` lists the destructive transactions of the window",
            )
        chosen = touched.choose(found, req.tables, what)
        if req.as_name:
            _as_new(cluster, db, before, live, chosen, req.as_name, result)
        else:
            _rows_back(cluster, db, before, live, chosen, ids, req, result)
        if result.refused or req.dry_run:
            live.rollback()
        else:
            live.commit()
            result.applied = True
    result.seconds = time.monotonic() - started
    return result


def _rows_back(
    cluster: LocalCluster,
    db: str,
    before: Connection,
    live: Connection,
    chosen: list[touched.Touched],
    ids: TxIds | None,
    req: UndoRequest,
    result: UndoResult,
) -> None:
    """Plan every table, refuse on conflicts, apply (parents before children)."""
    planned: list[tuple[TablePlan, shape.Shape, str]] = []
    for i, t in enumerate(_parents_first(live, chosen)):
        if t.kind == ChangeKind.DROP_TABLE:
            n = wholetable.create(cluster, db, before, live, t.table)
            result.tables.append(
                TablePlan(t.table.qualified, TableAction.CREATE, str(t.kind), [], rows=n)
            )
            continue
        temp = f"pgsafe_undo_{i}"
        plan, s = _plan_rows(before, live, t, ids, temp)
        result.tables.append(plan)
        planned.append((plan, s, temp))
    held = [[] if req.fire_triggers else triggers.enabled(live, s.table.pattern())
            for _, s, _ in planned]  # fmt: skip
    for (plan, _, _), off in zip(planned, held, strict=True):
        if off:
            names = ", ".join(sorted({t.name for t in off}))
            result.notes.append(
                f"{plan.table}: {len(off)} trigger(s) held off while its rows are written"
                f" back ({names}; --fire-triggers runs them)"
            )
    if result.conflicts and req.on_conflict is OnConflict.REFUSE:
        result.refused = True
        return
    if req.dry_run:
        return
    for (plan, s, temp), off in zip(planned, held, strict=True):
        triggers.hold_off(live, plan.table, off)
        rows.apply(live, s, temp, ids, req.on_conflict)
        triggers.put_back(live, off)
        _prove(live, plan, s, temp, req, result)


def _prove(live: Connection, plan: TablePlan, s: shape.Shape, temp: str, req: UndoRequest,
           result: UndoResult) -> None:  # fmt: skip
    """Every row written back is as it was before (else nothing is committed; with
    --fire-triggers, a note: the triggers were asked to run)."""
    bad = rows.differing(live, s, temp, req.on_conflict)
    if not bad:
        return
    if req.fire_triggers:
        result.notes.append(
            f"{plan.table}: {bad} row(s) written back differ from before the transaction:"
            " its triggers rewrote them (--fire-triggers)"
        )
        return
    raise VerificationFailed(
        f"{bad} row(s) of {plan.table} are not, once written back, what they were before"
        " (a rule or trigger rewrote them): nothing was changed",
        hint="look at the table's rules and ALWAYS triggers; --fire-triggers accepts rows"
        " as the triggers leave them",
    )


def _as_new(
    cluster: LocalCluster,
    db: str,
    before: Connection,
    live: Connection,
    chosen: list[touched.Touched],
    new: str,
    result: UndoResult,
) -> None:
    if len(chosen) != 1:
        listed = ", ".join(t.table.qualified for t in chosen)
        raise BadInput(
            f"--as names one table; this undo touches {listed}", hint="choose one with -t TABLE"
        )
    t = chosen[0]
    table = _root_of(before, t.table) if t.relation.root else t.table
    renamed = wholetable.rename(before, table, new)
    n = wholetable.create(cluster, db, before, live, renamed)
    result.tables.append(
        TablePlan(
            table.qualified, TableAction.CREATE, str(t.kind), [], new_name=renamed.qualified, rows=n
        )
    )


def _root_of(conn: Connection, t: Table) -> Table:
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.pg_partition_root(%s::regclass)",
        (t.pattern(),),
    ).fetchone()
    return Table(str(row[0]), str(row[1]), True) if row else t


_FK_SQL = """
SELECT c.conrelid::regclass::text, c.confrelid::regclass::text
  FROM pg_catalog.pg_constraint c WHERE c.contype = 'f'
"""


def _parents_first(live: Connection, ts: list[touched.Touched]) -> list[touched.Touched]:
    """Tables referenced by a foreign key before the tables that reference them."""
    refs = {(str(a), str(b)) for a, b in live.execute(_FK_SQL)}
    names = {id(t): _regclass(live, t.table) for t in ts}
    out: list[touched.Touched] = []
    todo = list(ts)
    while todo:
        for t in todo:
            parents = {b for a, b in refs if a == names[id(t)] and b != a}
            if not any(names[id(o)] in parents for o in todo if o is not t):
                out.append(t)
                todo.remove(t)
                break
        else:  # a cycle: keep the given order
            out += todo
            break
    return out


def _regclass(live: Connection, t: Table) -> str:
    row = live.execute("SELECT pg_catalog.to_regclass(%s)::text", (t.pattern(),)).fetchone()
    return str(row[0]) if row and row[0] else t.qualified


def restore_table(repo: Repository, req: RestoreTableRequest) -> UndoResult:
    """Table ``req.table`` as of ``req.target``, into the live database as ``req.as_name``."""
    started = time.monotonic()
    if not req.as_name.strip():
        raise BadInput("--as needs a table name", hint="e.g. --as orders_at_noon")
    major = _major(repo)
    conninfo = req.conn.conninfo()
    with connect(conninfo) as live:
        check_server(repo, live)
        db = _database(live)
        taken = wholetable.exists(live, Table(_schema_of(req.table), req.as_name))
    if taken:
        raise BadInput(
            f"a table {req.as_name!r} exists in the live database",
            hint="choose another name with --as",
        )
    result = UndoResult(
        req.target.describe(), db, None, dry_run=req.dry_run, operation="restore-table"
    )
    with (
        recovered(repo, req.target, db, exclusive=False, major=major, timeout=req.timeout) as (
            cluster,
            _,
        ),
        connect(cluster.conninfo(db)) as before,
        connect(conninfo, autocommit=False) as live,
    ):
        found = match(req.table, [r.table for r in touched.relations(before)])
        roots = [t for t in found if not _is_partition(before, t)]
        if len(roots) != 1:
            raise BadInput(
                f"no table {req.table!r} in database {db} at {req.target.describe()}",
                hint="names are matched as stored; write schema.table",
            )
        renamed = wholetable.rename(before, roots[0], req.as_name)
        n = wholetable.create(cluster, db, before, live, renamed)
        result.tables.append(
            TablePlan(
                roots[0].qualified,
                TableAction.CREATE,
                "as it was",
                [],
                new_name=renamed.qualified,
                rows=n,
            )
        )
        if req.dry_run:
            live.rollback()
        else:
            live.commit()
            result.applied = True
    result.seconds = time.monotonic() - started
    return result


def _schema_of(name: str) -> str:
    return name.partition(".")[0] if "." in name else "public"


def _is_partition(conn: Connection, t: Table) -> bool:
    row = conn.execute(
        "SELECT relispartition FROM pg_catalog.pg_class WHERE oid = %s::regclass", (t.pattern(),)
    ).fetchone()
    return bool(row and row[0])


__all__ = ["TargetRequest", "restore_table", "undo"]
