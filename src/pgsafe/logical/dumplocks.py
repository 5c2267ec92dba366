"""When the dump's fingerprint may read tables: only once pg_dump holds its locks.

The fingerprint runs in the transaction whose snapshot pg_dump imports, and every
table it reads stays locked (ACCESS SHARE) until that transaction ends, after pg_dump.
Were it to read a table before pg_dump had locked it, a DDL statement arriving in
between (``ALTER TABLE``, ``LOCK TABLE``) would queue behind the fingerprint's lock and
pg_dump's lock request would queue behind the DDL: pg_dump waits for the DDL, the DDL
for the fingerprint's transaction, and that transaction for pg_dump — a cycle through
this process that PostgreSQL's deadlock detector cannot see, so everything hangs, and
every later query on the table queues behind the DDL.

So the fingerprint first waits (polling ``pg_locks`` from its own connection) until the
pg_dump backend, recognised by a unique ``application_name``, holds a granted lock on
every table that pg_dump locks, or until pg_dump has ended.  It then locks the same
tables itself, at once, bounded by the same lock timeout pg_dump gets: a DDL statement
that arrived in that instant makes the dump fail with a message, not hang.

Limits: a connection string that sets ``application_name`` itself hides pg_dump's
backend; the fingerprint then waits until pg_dump has ended (still in the dump's
snapshot, so still consistent, unless a ``TRUNCATE`` or table rewrite, which are not
MVCC-safe, committed in between).  The same holds for a tiny dump that pg_dump finishes
before the fingerprint has its locks.
"""

from __future__ import annotations

import secrets
import threading

import psycopg
from psycopg import sql

from pgsafe.errors import OperationFailed, ToolFailed
from pgsafe.logical.tables import Table
from pgsafe.pg.connect import Connection, connect

POLL_S = 0.05
_BATCH = 500

_OIDS_SQL = """
SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
   AND c.relkind IN ('r', 'p')
"""

_HELD_SQL = """
SELECT count(DISTINCT l.relation), bool_or(NOT l.granted)
  FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE a.application_name = %s AND l.locktype = 'relation'
   AND l.relation = ANY (%s::oid[])
"""


def application_name() -> str:
    """A name that tells this dump's pg_dump backend from every other session."""
    return "pgsafe-dump-" + secrets.token_hex(8)


def timeout_ms(seconds: float) -> str:
    """A lock timeout as PostgreSQL and ``pg_dump --lock-wait-timeout`` take it."""
    return f"{max(1, round(seconds * 1000))}ms"


def lockable_oids(conn: Connection, tables: list[Table]) -> list[int]:
    """OIDs of the tables pg_dump locks (plain and partitioned tables)."""
    if not tables:
        return []
    rows = conn.execute(
        _OIDS_SQL, ([t.schema for t in tables], [t.name for t in tables])
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def wait_for_dump_locks(
    conninfo: str, app: str, oids: list[int], dump_ended: threading.Event
) -> None:
    """Return once the pg_dump backend named ``app`` holds a lock on every table of
    ``oids``, or pg_dump has ended (it then held them all, or failed)."""
    if not oids:
        return
    with connect(conninfo) as conn:  # autocommit: each poll sees the current locks
        while not dump_ended.is_set():
            row = conn.execute(_HELD_SQL, (app, oids)).fetchone()
            held = int(row[0]) if row else 0
            waiting = bool(row[1]) if row else False
            if held >= len(oids) and not waiting:
                return
            dump_ended.wait(POLL_S)


def lock_like_dump(conn: Connection, oids: list[int], timeout_s: float) -> None:
    """In the snapshot's transaction: a lock timeout for what follows, then ACCESS SHARE
    on the tables at once (as pg_dump holds them, so nothing else waits on us)."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(timeout_ms(timeout_s))))
    for i in range(0, len(oids), _BATCH):
        names = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.oid = ANY (%s::oid[])",
            (oids[i : i + _BATCH],),
        ).fetchall()
        if names:
            stmt = sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(
                sql.SQL(", ").join(
                    sql.SQL("ONLY {}").format(sql.Identifier(str(s), str(n))) for s, n in names
                )
            )
            conn.execute(stmt)


def tool_failure(label: str, rc: int, first_line: str) -> ToolFailed:
    """pg_dump's failure; one that waited out its lock timeout says why."""
    hint = None
    # pg_dump waits for its locks under statement_timeout = --lock-wait-timeout
    if any(w in first_line for w in ("lock timeout", "statement timeout", "could not obtain lock")):
        first_line += " (waiting for a table lock)"
        hint = (
            "another session held a table in a conflicting lock (a migration's ALTER or "
            "LOCK TABLE); run the dump again later, or raise --lock-wait-timeout"
        )
    return ToolFailed(f"pg_dump of {label} failed (exit {rc}): {first_line}", hint=hint)


def fingerprint_failure(dbname: str, exc: BaseException) -> OperationFailed:
    """The error for a fingerprint that failed; a lock timeout is named as such."""
    if isinstance(exc, OperationFailed):
        return exc
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return OperationFailed(
            f"dump of {dbname} stopped: a concurrent schema change (ALTER/LOCK TABLE ...) "
            "held a table past the lock wait timeout",
            hint="run the dump again after the migration, or raise --lock-wait-timeout",
        )
    return OperationFailed(f"fingerprint of {dbname} failed: {exc}")
