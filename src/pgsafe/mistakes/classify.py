"""Turn a committed transaction's records into a :class:`Mistake` (or nothing).

* Rows deleted or changed in a user table (``r``, ``m``; a partition is named itself)
  are a DELETE / UPDATE with their count; the system catalogs' own rows are not a
  mistake (every DDL changes them).
* A relfilenode the commit drops is, by the table it belonged to (named through the
  catalog map): a DROP TABLE when the table is gone, DROP SCHEMA when the transaction
  also deleted rows of ``pg_namespace``; when the table still exists (same oid, new
  relfilenode) a TRUNCATE, unless the transaction wrote rows or pages into the new
  relfilenode: then it was a rewrite (VACUUM FULL, CLUSTER, ALTER TABLE ... TYPE),
  which loses nothing and is not listed.
* Indexes, TOAST tables and sequences are not listed (their table is).
* A dropped relfilenode no map names is listed as a DROP TABLE of an unnamed
  relation (its relfilenode shown), or as a TRUNCATE when the transaction made new
  relfilenodes; when those belong to live tables, it is the old storage of a TRUNCATE
  (listed by the live name) or of a rewrite.
* A relfilenode made and dropped by the same transaction (CREATE TABLE then TRUNCATE or
  DROP inside one transaction) held nothing of before: not listed.
* A ``Database`` DROP record is a DROP DATABASE.
"""

from __future__ import annotations

from datetime import datetime

from pgsafe.mistakes.collect import Committed, RelKey
from pgsafe.mistakes.model import ChangeKind, Mistake, TableChange
from pgsafe.mistakes.naming import FIRST_NORMAL_OID, Named, Namer
from pgsafe.wal import names

TABLE_KINDS = frozenset("rm")
PG_NAMESPACE = 2615  # pg_namespace's relfilenode (and oid) since initdb


def database_of(t: Committed) -> int:
    for db, _ in (*t.rows.keys(), *t.dropped):
        if db:
            return db
    return t.dropped_databases[0] if t.dropped_databases else 0


def row_owner(namer: Namer, db: int, tablespace: int, rfn: int,
              at: datetime) -> tuple[bool, str | None]:  # fmt: skip
    """Whether rows deleted or changed in this relation are listed (a user table's, not
    a shared or system catalog's, an index's or a TOAST table's), and the table's name
    (None: unnamed)."""
    if db == 0:
        return False, None  # a shared catalog (pg_database, pg_authid...)
    named = namer.relation(db, tablespace, rfn, at)
    if named is None:
        return rfn >= FIRST_NORMAL_OID, None
    if named.system or named.kind not in TABLE_KINDS:
        return False, None
    return True, named.qualified


def _is_namespace(namer: Namer, db: int, tablespace: int, rfn: int, at: datetime) -> bool:
    """Whether the relation is ``pg_namespace`` (a schema's row: DROP SCHEMA)."""
    if db == 0:
        return False
    named = namer.relation(db, tablespace, rfn, at)
    if named is None:
        return rfn == PG_NAMESPACE  # never rewritten, so never renumbered
    return named.qualified == "pg_catalog.pg_namespace"


def _row_changes(t: Committed, namer: Namer) -> tuple[list[TableChange], bool]:
    """DELETE / UPDATE changes, and whether a schema's row was deleted."""
    out: list[TableChange] = []
    schema_dropped = False
    for (db, rfn), c in t.rows.items():
        ts = t.tablespaces.get((db, rfn), 0)
        listed, table = row_owner(namer, db, ts, rfn, t.time)
        if not listed:
            schema_dropped |= c.deletes > 0 and _is_namespace(namer, db, ts, rfn, t.time)
            continue
        if c.deletes:
            out.append(TableChange(ChangeKind.DELETE, rfn, table, c.deletes))
        if c.updates:
            out.append(TableChange(ChangeKind.UPDATE, rfn, table, c.updates))
    return out, schema_dropped


def _live_created(t: Committed, namer: Namer) -> dict[int, tuple[RelKey, Named]]:
    """Relfilenodes the transaction made for tables that still use them, by table oid."""
    out = {}
    for db, rfn in t.created:
        n = namer.relation(db, 0, rfn, t.time)
        if n is not None and n.live and n.kind in TABLE_KINDS and not n.system:
            out[n.oid] = ((db, rfn), n)
    return out


def _drop_changes(t: Committed, namer: Namer, schema_dropped: bool) -> list[TableChange]:
    out: list[TableChange] = []
    created = _live_created(t, namer)
    unnamed: list[int] = []
    seen: set[int] = set()
    for db, rfn in t.dropped:
        if (db, rfn) in t.created:
            continue  # made and dropped by this transaction: nothing that existed before
        named = namer.relation(db, 0, rfn, t.time)
        if named is None:
            if rfn >= FIRST_NORMAL_OID:
                unnamed.append(rfn)
            continue
        if named.system or named.kind not in TABLE_KINDS:
            continue
        seen.add(named.oid)
        live = namer.live_by_oid(db, named.oid)
        if live is None:
            kind = ChangeKind.DROP_SCHEMA if schema_dropped else ChangeKind.DROP_TABLE
            out.append(TableChange(kind, rfn, named.qualified, 0))
            continue
        new = created.get(named.oid)
        if new is not None and new[0] in t.written and not t.truncate_record:
            continue  # a rewrite: the rows are all in the new relfilenode
        out.append(TableChange(ChangeKind.TRUNCATE, rfn, live.qualified, 0))
    if unnamed and created:
        for oid, (key, n) in created.items():
            if oid not in seen and (key not in t.written or t.truncate_record):
                out.append(TableChange(ChangeKind.TRUNCATE, key[1], n.qualified, 0))
    elif unnamed:
        # a TRUNCATE makes a new relfilenode for each one it drops; a DROP makes none
        kind = ChangeKind.DROP_SCHEMA if schema_dropped else ChangeKind.DROP_TABLE
        kind = ChangeKind.TRUNCATE if t.created else kind
        out += [TableChange(kind, rfn, None, 0) for rfn in unnamed]
    return out


def classify(t: Committed, namer: Namer, command: str = "pgsafe") -> Mistake | None:
    """The mistake ``t`` made, or None when it destroyed nothing of the user's."""
    rows, schema_dropped = _row_changes(t, namer)
    changes = rows + _drop_changes(t, namer, schema_dropped)
    changes += [TableChange(ChangeKind.DROP_DATABASE, 0, None, 0) for _ in t.dropped_databases]
    if not changes:
        return None
    db = database_of(t)
    return Mistake(
        xid=t.xid, commit_time=t.time, lsn=names.format_lsn(t.lsn),
        timeline=t.timeline,
        database=namer.database(db) if db else None, database_oid=db,
        changes=tuple(changes), undo=f"{command} undo {t.xid}",
        subxacts=t.subxacts, multixacts=t.multixacts,
    )  # fmt: skip
