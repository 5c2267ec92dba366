"""The user's triggers held off while undo writes rows back, and put back as they were.

A table's triggers would otherwise rewrite the rows coming back: pagila's
``last_updated`` sets ``last_update = now()`` on every UPDATE, so the rows an UPDATE
mistake changed would come back with today's time, not as they were.  So, in the undo's
one transaction, each enabled user trigger (not a constraint's internal one: foreign
keys are still checked) of every relation rows are written to -- the table, and its
partitions when it has some, with the triggers cloned onto them from the partitioned
table (marked internal before PostgreSQL 15, so told from a constraint's by having no
constraint) -- is disabled by name, the rows are written, and each is
enabled again in the mode it had (``ENABLE``, ``ENABLE ALWAYS``, ``ENABLE REPLICA``);
triggers the user had disabled stay so.  ``ALTER TABLE`` needs the table's owner, and
holds its SHARE ROW EXCLUSIVE lock until the undo commits: writers to the table wait,
readers do not, and nobody else ever sees the triggers disabled (the change is the
transaction's own, and undone before it commits).

``--fire-triggers`` lets them run instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgsafe.errors import BadInput
from pgsafe.pg.connect import Connection

_ENABLED = """
SELECT n.nspname::text, c.relname::text, t.tgname::text, t.tgenabled::text
  FROM (SELECT r.oid AS relid, 0 AS level FROM pg_catalog.to_regclass(%(t)s) r(oid)
        UNION  -- pg_partition_tree gives nothing for a table that is not partitioned
        SELECT relid, level FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass(%(t)s))) p
  JOIN pg_catalog.pg_class c ON c.oid = p.relid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid
 WHERE (NOT t.tgisinternal OR t.tgconstraint = 0) AND t.tgenabled <> 'D'
 ORDER BY p.level, c.oid, t.tgname
"""
_MODE = {"O": "ENABLE", "A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}


@dataclass(frozen=True)
class Trigger:
    schema: str
    table: str
    name: str
    mode: str  # pg_trigger.tgenabled: O, A or R

    def _alter(self, verb: str) -> sql.Composed:
        return sql.SQL("ALTER TABLE {}.{} " + verb + " TRIGGER {}").format(
            sql.Identifier(self.schema), sql.Identifier(self.table), sql.Identifier(self.name)
        )

    def off(self) -> sql.Composed:
        return self._alter("DISABLE")

    def on(self) -> sql.Composed:
        return self._alter(_MODE.get(self.mode, "ENABLE"))


def enabled(live: Connection, pattern: str) -> list[Trigger]:
    """The enabled user triggers of the relation ``pattern`` and of its partitions."""
    return [
        Trigger(str(s), str(t), str(n), str(m))
        for s, t, n, m in live.execute(_ENABLED, {"t": pattern})
    ]


def hold_off(live: Connection, table: str, triggers: list[Trigger]) -> None:
    """Disable ``triggers`` in the live transaction; BadInput when the user may not."""
    for t in triggers:
        live.execute("SAVEPOINT pgsafe_triggers")
        try:
            live.execute(t.off())
        except psycopg.errors.InsufficientPrivilege as exc:
            live.execute("ROLLBACK TO SAVEPOINT pgsafe_triggers")
            raise BadInput(
                f"{table} has trigger {t.name!r}, which would rewrite the rows coming back,"
                f" and this role may not disable it ({exc.diag.message_primary}):"
                " nothing was changed",
                hint="connect as the table's owner, or pass --fire-triggers to let the"
                " triggers run on the rows written back",
            ) from None
        live.execute("RELEASE SAVEPOINT pgsafe_triggers")


def put_back(live: Connection, triggers: list[Trigger]) -> None:
    """Enable ``triggers`` again, each in the mode it had."""
    for t in triggers:
        live.execute(t.on())
