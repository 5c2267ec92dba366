"""``restore -t ... --clean`` of tables that exist: what it changes, and nothing more.

The rows of each existing table of the plan are replaced in one transaction: ``DELETE
FROM ONLY`` each (never a bare ``DELETE``, which on an inheritance parent empties its
children and on a partitioned table every partition), then the backup's rows, COPY'd
into each table itself.  A partitioned table holds no rows of its own: its partitions
are in the plan and are replaced one by one.

A DELETE can still reach tables the plan does not list: foreign keys with ``ON DELETE
CASCADE / SET NULL / SET DEFAULT`` from other tables, triggers and rules.  As a
superuser, pgsafe runs the transaction with ``session_replication_role = replica``,
which turns off foreign-key actions and ordinary triggers and rules.  The triggers that
would still fire (enabled ``ALWAYS``, or ``REPLICA``; for a user who is not a superuser,
every user trigger) are disabled by name inside the transaction and put back, each in
its own mode, before it commits (the table's owner may do so).  What cannot be turned
off that way — foreign-key actions for a user who is not a superuser, rules that fire —
is named and the restore refused before anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from pgsafe.errors import BadInput
from pgsafe.logical.tables import Table
from pgsafe.pg.connect import Connection

_FK_SQL = """
SELECT con.conname, sn.nspname, s.relname, tn.nspname, t.relname, con.confdeltype::text
  FROM pg_catalog.pg_constraint con
  JOIN pg_catalog.pg_class s ON s.oid = con.conrelid
  JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_catalog.pg_class t ON t.oid = con.confrelid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
 WHERE con.contype = 'f' AND con.confdeltype IN ('c', 'n', 'd')
   AND (tn.nspname, t.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""

_TRIGGERS_SQL = """
SELECT tg.tgname, n.nspname, c.relname, tg.tgenabled::text
  FROM pg_catalog.pg_trigger tg
  JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT tg.tgisinternal AND tg.tgenabled <> 'D'
   AND (tg.tgtype & (4 | 8 | 32)) <> 0  -- INSERT, DELETE, TRUNCATE
   AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""

_RULES_SQL = """
SELECT r.rulename, n.nspname, c.relname, r.ev_enabled::text
  FROM pg_catalog.pg_rewrite r
  JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE r.ev_type IN ('3', '4') AND r.ev_enabled <> 'D'  -- INSERT, DELETE
   AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""

_ACTION = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _fires(enabled: str, replica: bool) -> bool:
    """Does a trigger or rule enabled as ``enabled`` fire in the restore's session?"""
    return enabled == "A" or (enabled == "R") == replica


def side_effects(
    conn: Connection, cleaned: Sequence[Table], chosen: Sequence[Table], replica: bool
) -> list[str]:
    """What the DELETE and COPY of ``cleaned`` would do to tables outside ``chosen``."""
    if not cleaned:
        return []
    keys = ([t.schema for t in cleaned], [t.name for t in cleaned])
    inside = {(t.schema, t.name) for t in chosen}
    out: list[str] = []
    if not replica:
        for name, ss, sr, ts, tr, action in conn.execute(_FK_SQL, keys).fetchall():
            if (ss, sr) not in inside:
                out.append(
                    f"foreign key {name} of {ss}.{sr} (ON DELETE {_ACTION[action]}) "
                    f"on {ts}.{tr} would change {ss}.{sr}"
                )
    for name, schema, rel, enabled in conn.execute(_RULES_SQL, keys).fetchall():
        if _fires(str(enabled), replica):
            out.append(f"rule {name} on {schema}.{rel} would fire and may change other tables")
    return out


_MODE = {"O": "ENABLE", "A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}


def trigger_guards(conn: Connection, cleaned: Sequence[Table], replica: bool) -> tuple[str, str]:
    """(statements that disable, by name, the triggers of ``cleaned`` that would fire in
    the restore's session; statements that put each back in its mode)."""
    if not cleaned:
        return "", ""
    keys = ([t.schema for t in cleaned], [t.name for t in cleaned])
    off, on = [], []
    for name, schema, rel, enabled in conn.execute(_TRIGGERS_SQL, keys).fetchall():
        if _fires(str(enabled), replica):
            table = sql.Identifier(str(schema), str(rel))
            trig = sql.Identifier(str(name))
            mode = sql.SQL(_MODE[str(enabled)])
            off.append(sql.SQL("ALTER TABLE ONLY {} DISABLE TRIGGER {};\n").format(table, trig))
            on.append(sql.SQL("ALTER TABLE ONLY {} {} TRIGGER {};\n").format(table, mode, trig))
    return "".join(x.as_string() for x in off), "".join(x.as_string() for x in on)


def refuse_side_effects(problems: list[str], superuser: bool) -> None:
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        hint = "restore into another database (--create -d NEWNAME) and copy the rows you need"
        if not superuser:
            hint += ", or restore as a superuser (foreign-key actions and rules are off then)"
        raise BadInput(
            "restoring with --clean would change tables the plan does not list: "
            + "; ".join(problems[:3])
            + more,
            hint=hint,
        )


def delete_statements(existing: Sequence[Table], kinds: dict[tuple[str, str], str]) -> str:
    """``DELETE FROM ONLY`` for each existing table that holds rows of its own."""
    return "".join(
        sql.SQL("DELETE FROM ONLY {};\n").format(sql.Identifier(t.schema, t.name)).as_string()
        for t in existing
        if kinds.get((t.schema, t.name), "r") != "p"
    )
