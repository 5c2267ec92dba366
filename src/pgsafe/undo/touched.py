"""Which tables a transaction touched (or which changed since a target), found on the
throwaway cluster and the live database.

For a transaction (the throwaway stopped just before its commit, then promoted):

* rows it deleted or updated are the rows whose ``xmax`` names it, one of its
  subtransactions or a multixact its update made (:mod:`pgsafe.undo.txids`);
* a table it truncated or dropped was held in ACCESS EXCLUSIVE mode at the stop point
  (:class:`pgsafe.undo.throwaway.StopPoint`): gone from the live database, it was
  dropped; there with another relfilenode, it was truncated (or rewritten).

For a time or restore-point target: every table whose rows differ from the live
table's (a count and a hash of every row on both sides), or that is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from pgsafe.errors import BadInput
from pgsafe.logical.tables import Table, match
from pgsafe.mistakes.model import ChangeKind, Mistake
from pgsafe.pg.connect import Connection
from pgsafe.undo.txids import TxIds, removed_by

_RELATIONS_SQL = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind::text, c.relfilenode::bigint,
       CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid)::regclass::text END
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 2, 3
"""


@dataclass(frozen=True)
class Relation:
    oid: int
    table: Table
    relfilenode: int
    root: str | None  # the partition root (as regclass text), for a partition


@dataclass(frozen=True)
class Touched:
    relation: Relation
    kind: ChangeKind | str  # "changed" for a time / restore-point target
    rows: int  # rows whose xmax names the transaction (0 for TRUNCATE / DROP)

    @property
    def table(self) -> Table:
        return self.relation.table


def relations(conn: Connection) -> list[Relation]:
    return [
        Relation(
            int(o), Table(str(s), str(n), str(k) == "p"), int(f), None if r is None else str(r)
        )
        for o, s, n, k, f, r in conn.execute(_RELATIONS_SQL)
    ]


def _ident(t: Table) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(t.schema), sql.Identifier(t.name))


def _count(conn: Connection, q: sql.Composed) -> int:
    row = conn.execute(q).fetchone()
    return int(row[0]) if row else 0


def _kinds(mistake: Mistake | None) -> dict[str, set[ChangeKind]] | None:
    """What the WAL scan says the transaction did to each table (None: not every
    table it touched could be named, so every table is looked at)."""
    if mistake is None or any(c.table is None for c in mistake.changes):
        return None
    out: dict[str, set[ChangeKind]] = {}
    for c in mistake.changes:
        out.setdefault(str(c.table), set()).add(c.kind)
    return out


def by_transaction(
    before: Connection,
    live: Connection,
    ids: TxIds,
    locked: list[int],
    mistake: Mistake | None = None,
) -> list[Touched]:
    """Tables transaction ``ids`` deleted or changed rows in, truncated or dropped;
    only those the WAL scan names, when it names every one."""
    scanned = _kinds(mistake)
    rels = relations(before)
    now = {r.oid: r for r in relations(live)}
    out: dict[int, Touched] = {}
    dropped: set[str] = set()
    for r in rels:
        # the scan names dropped relations by their storage: a partitioned table has none
        named_drop = (
            scanned is None
            or r.table.partitioned
            or ChangeKind.DROP_TABLE in scanned.get(r.table.qualified, ())
        )
        if r.oid in locked and r.oid not in now and named_drop:
            out[r.oid] = Touched(r, ChangeKind.DROP_TABLE, 0)
            dropped.add(r.table.pattern())
    for r in rels:
        if r.oid in out or r.table.partitioned:
            continue
        kinds = scanned.get(r.table.qualified) if scanned is not None else None
        if scanned is not None and kinds is None:
            continue
        if r.oid in locked and now.get(r.oid) and now[r.oid].relfilenode != r.relfilenode:
            out[r.oid] = Touched(r, ChangeKind.TRUNCATE, 0)
            continue
        n = _count(
            before,
            sql.SQL("SELECT count(*) FROM ONLY {} t WHERE {}").format(
                _ident(r.table), removed_by("t", ids)
            ),
        )
        if n:
            only_update = kinds == {ChangeKind.UPDATE}
            out[r.oid] = Touched(r, ChangeKind.UPDATE if only_update else ChangeKind.DELETE, n)
    # a partition of a dropped partitioned table comes back with it
    return [
        t
        for t in out.values()
        if not (
            t.kind == ChangeKind.DROP_TABLE
            and t.relation.root
            and _root_pattern(t, rels) in dropped
        )
    ]


def _root_pattern(t: Touched, rels: list[Relation]) -> str:
    for r in rels:
        if r.table.partitioned and _regclass_text(r.table) == t.relation.root:
            return r.table.pattern()
    return ""


def _regclass_text(t: Table) -> str:
    def q(x: str) -> str:
        plain = x.isidentifier() and x == x.lower() and x.isascii()
        return x if plain else '"' + x.replace('"', '""') + '"'

    return q(t.name) if t.schema == "public" else f"{q(t.schema)}.{q(t.name)}"


_HASH = (
    "SELECT count(*), coalesce(sum(hashtextextended(ROW(t.*)::text, 0)), 0)::text FROM ONLY {} t"
)


def since_target(before: Connection, live: Connection, names: Sequence[str]) -> list[Touched]:
    """Tables that differ between the target and now (or gone since)."""
    rels = [r for r in relations(before) if not r.table.partitioned]
    now = {r.table.pattern(): r for r in relations(live)}
    if names:
        rels = [r for r in rels if any(_named(n, r) for n in names)]
    out = []
    for r in rels:
        if r.table.pattern() not in now:
            out.append(Touched(r, ChangeKind.DROP_TABLE, 0))
            continue
        q = sql.SQL(_HASH).format(_ident(r.table))
        if before.execute(q).fetchone() != live.execute(q).fetchone():
            out.append(Touched(r, "changed", 0))
    return out


def _named(name: str, r: Relation) -> bool:
    if match(name, [r.table]):
        return True
    return bool(r.root) and r.root in (name, name.lower(), f"public.{name}")


def choose(touched: list[Touched], names: Sequence[str], what: str) -> list[Touched]:
    """The touched tables ``-t`` names (all without ``-t``); BadInput listing the
    candidates for a name that matches none."""
    if not names:
        return touched
    out = []
    for name in names:
        found = [t for t in touched if _named(name, t.relation)]
        if not found:
            listed = ", ".join(sorted({t.table.qualified for t in touched})) or "none"
            raise BadInput(
                f"{what} did not touch table {name!r}",
                hint=f"the tables it touched: {listed}",
            )
        out += [t for t in found if t not in out]
    return out
