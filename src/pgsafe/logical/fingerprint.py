"""Data fingerprints: per table, the row count and an order-independent content hash.

The hash is a sum, as numeric, of a 64-bit hash of each row, so it needs no ORDER BY,
works for tables without a primary key and streams in constant memory.  Taken in the
same snapshot as the dump, it is what a restore must reproduce.  Backups record their
method in ``options.fingerprint_method`` and are compared with the same one:

``named-hash`` (dumps by pgsafe 0.2 on)
    Each relation alone (``FROM ONLY``: an inheritance parent without its children's
    rows) and its columns taken in the order of their names, not their positions:
    pg_dump recreates an inheritance child with the inherited columns first, so a
    restored child may have its columns in another order.  The row is
    ``ROW(t.a, t.b, ...)`` over the sorted column names, hashed as ``record-hash``
    does (per-table ``named-record``) or through its text (``named-text``), under the
    same rules.  The entry also records ``columns``: a digest of the sorted column
    names and their schema-qualified types and typmods, so a restored column of
    another type is named as such.  Materialized views are checked too: whether they
    are populated and, when the view's content equals what its query gives at dump
    time (``fresh``), their content; a stale one is recreated by REFRESH on restore
    and only its being populated is compared.  The restore side uses the per-table
    method the backup's entry records.

``record-hash`` (dumps from PostgreSQL 14 on, before ``named-hash``)
    Per row ``hashint8extended(h, h)`` with ``h = hash_record_extended(t.*, 0)``: each
    column through its type's own 64-bit hash function, no text conversion (on pgbench's
    accounts table 0.42 s per million rows against 0.73 s for the text method and 0.34 s
    for ``COPY`` to /dev/null).  ``hash_record_extended`` combines the column hashes
    linearly (``31 * h + h_col``), so a sum of its raw values would not notice values
    swapped between two rows (``31a1+b2 + 31a2+b1 = 31a1+b1 + 31a2+b2``); the second
    hash, seeded with the whole 64 bits of ``h``, makes each row's term pseudo-random
    again (its cost is within the noise).  A table uses this only when every column's
    type, recursively through domains, arrays, ranges, multiranges and composite types,
    is a built-in type listed in ``_STABLE_HASH`` and every collation on the way is
    deterministic (per-table method ``record``); otherwise the table uses
    ``hashtextextended((t.*)::text, 0)`` (``text``).  This is decided up front from the
    catalogs, with types identified by their fixed built-in OIDs, so the restored
    database, whose schema pg_dump recreated, decides the same; each table's entry
    records the method it got (``"method"``).  Left out, so they fall back to text:
    types without a hash function (point, json, xml, money, bit, tsvector...), enums
    and ``reg*``/``aclitem``/``oidvector`` (their hash is of OIDs, which a restore
    renumbers), extension types (citext, hstore..., whose hash support varies by
    version) and nondeterministic collations (their hash folds strings the collation
    calls equal, e.g. case).  Should a hash still fail, the table is retried with text
    inside a savepoint (the same happens on the restore side).

    Values the type calls equal hash equal, where the text method tells them apart:
    numeric ``1.0`` / ``1.00`` (and the same inside jsonb), float ``-0.0`` / ``0.0``,
    interval ``'1 day'`` / ``'24 hours'``, trailing blanks of ``char(n)``.  For
    verifying a restore this does not matter: a restore copies each value's text
    through COPY, and cannot change a column's type or typmod; a restore that changed
    a value's display form but not its value is not a failure mode of pg_restore (and
    such a value still compares equal in SQL).  A lost, duplicated or changed row
    changes the sum (or the count) exactly as with the text method.

``hashtextextended`` (dumps from before, and from PostgreSQL 13 or older)
    ``hashtextextended(t::text, 0)``.  Kept as it was so that those backups still verify,
    though in a table with a column named ``t`` it hashes that column, not the row.

``md5`` (the first method)
    The first 64 bits of md5 of the row's text (2.8 times the server CPU of
    ``hashtextextended``).

Text forms are taken with the settings that change them pinned first.
PostgreSQL's hash functions give other values on big-endian machines: compare on the
same kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from pgsafe.logical.tables import Table
from pgsafe.models.backup import MATVIEW, TableFingerprint, TablePrints
from pgsafe.pg.connect import Connection as Conn

PINNED = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, MDY'",
    "SET IntervalStyle = 'postgres'",
    "SET bytea_output = 'hex'",
    "SET extra_float_digits = 1",
)

NAMED = "named-hash"
METHOD = "record-hash"
TEXT = "hashtextextended"
NAMED_RECORD = "named-record"
NAMED_TEXT = "named-text"
# A record-hash backup's per-table methods.  ``t.*`` is the whole row even in a table with
# a column named ``t`` (where the older methods' ``t::text`` is that column alone).
RECORD = "record"
ROW_TEXT = "text"
_QUERIES = {
    # OFFSET 0 keeps the subquery, so h is computed once per row
    RECORD: "SELECT count(*), coalesce(sum(pg_catalog.hashint8extended(h, h)), 0)::text"
    " FROM (SELECT pg_catalog.hash_record_extended(t.*, 0) AS h FROM {} AS t OFFSET 0) AS s",
    ROW_TEXT: "SELECT count(*), coalesce(sum(pg_catalog.hashtextextended((t.*)::text, 0)), 0)"
    "::text FROM {} AS t",
    TEXT: "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} AS t",
    "md5": "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint"
    "::numeric), 0)::text FROM {} AS t",
}
# named-hash: {0} the relation (FROM ONLY), {1} the row over the columns sorted by name
_NAMED_QUERIES = {
    NAMED_RECORD: "SELECT count(*), coalesce(sum(pg_catalog.hashint8extended(h, h)), 0)::text"
    " FROM (SELECT pg_catalog.hash_record_extended({1}, 0) AS h FROM {0} AS t OFFSET 0) AS s",
    NAMED_TEXT: "SELECT count(*), coalesce(sum(pg_catalog.hashtextextended(({1})::text, 0)), 0)"
    "::text FROM {0} AS t",
}
_COLUMNS_SQL = """
SELECT a.attname, tn.nspname, t.typname, a.atttypmod, a.atttypid, a.attcollation
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
 WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
"""
_REL_SQL = """
SELECT c.oid, c.relkind::text, c.relispopulated, pg_catalog.pg_get_viewdef(c.oid)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relname = %s
"""

# Built-in types (fixed OIDs) whose extended hash is a function of the value alone: bool,
# bytea, "char", name, int8, int2, int4, text, oid, float4, float8, cidr, macaddr8,
# macaddr, inet, bpchar, varchar, date, time, timestamp, timestamptz, interval, timetz,
# numeric, uuid, pg_lsn, jsonb.
_STABLE_HASH = frozenset(
    {16, 17, 18, 19, 20, 21, 23, 25, 26, 700, 701, 650, 774, 829, 869, 1042, 1043}
    | {1082, 1083, 1114, 1184, 1186, 1266, 1700, 2950, 3220, 3802}
)
_NOT_ARRAYS = frozenset({22, 30})  # int2vector, oidvector: subscriptable, hashed by OIDs

EMPTY = TableFingerprint(rows=0, hash="0")


def _same(e: TableFingerprint, a: TableFingerprint) -> bool:
    """What a restore must reproduce: rows, hash, method and columns."""
    return (e.rows, e.hash, e.method, e.columns) == (a.rows, a.hash, a.method, a.columns)


@dataclass(frozen=True)
class TableCheck:
    table: str
    expected: TableFingerprint | None
    actual: TableFingerprint | None

    @property
    def ok(self) -> bool:
        if self.expected is None or self.actual is None:
            return False
        e, a = self.expected, self.actual
        if e.kind == MATVIEW:
            if e.populated != a.populated:
                return False
            if not e.populated or not e.fresh:
                return True
        return _same(e, a) and e.complete

    def detail(self) -> str:
        if self.actual is None:
            rows = self.expected.rows if self.expected and self.expected.rows is not None else "?"
            return f"missing after restore (expected {rows} rows)"
        if self.expected is None:
            return "not in the backup"
        if self.expected.kind == MATVIEW:
            ep, ap = self.expected.populated, self.actual.populated
            if ep != ap:
                word = {True: "populated", False: "not populated"}
                return f"materialized view: backup {word[bool(ep)]}, restored {word[bool(ap)]}"
            if not ep:
                return "materialized view, not populated (as in the backup)"
            if not self.expected.fresh:
                return "materialized view, populated (stale at dump time: content not compared)"
        e, a = self.expected.rows, self.actual.rows
        if e != a:
            return f"rows: expected {e}, got {a}"
        em, am = self.expected.method, self.actual.method
        if em != am:
            return f"{a} rows, fingerprint method differs: backup {em}, restored table {am}"
        if self.expected.columns != self.actual.columns:
            return f"{a} rows, columns differ (names or types)"
        if self.expected.hash != self.actual.hash or not self.ok:
            return f"{a} rows, content differs"
        return f"{a} rows, content identical"


def pin_settings(conn: Conn, *, local: bool = False) -> None:
    for stmt in PINNED:
        conn.execute(stmt.replace("SET ", "SET LOCAL ", 1) if local else stmt)


def method_for(major: int) -> str:
    """The method a new dump records.  named-hash records each table's own method (text
    where the server has no hash_record_extended, before 14), and the restore side uses
    that, so a dump from an older server verifies on a newer one."""
    del major
    return NAMED


def table_fingerprint(conn: Conn, table: Table, method: str = METHOD) -> TableFingerprint:
    """One table's fingerprint by a backup's ``method``."""
    if method == NAMED:
        return _named(conn, table, _Types(conn), None)
    if method == METHOD:
        return _record_hash(conn, table, _Types(conn))
    return _query(conn, table, method)


def _query(conn: Conn, table: Table, method: str) -> TableFingerprint:
    q = sql.SQL(_QUERIES[method]).format(sql.Identifier(table.schema, table.name))
    row = conn.execute(q).fetchone()
    assert row is not None
    return TableFingerprint(rows=int(row[0]), hash=str(row[1]))


def _record_hash(conn: Conn, table: Table, types: _Types) -> TableFingerprint:
    """A record-hash backup's entry for one table: the per-table method, then the query."""
    if types.row_hashable(table):
        try:
            with conn.transaction():  # a savepoint inside the dump's snapshot transaction
                return replace(_query(conn, table, RECORD), method=RECORD)
        except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFunction):
            pass  # "could not identify a hash function for type ...": text, below
    return replace(_query(conn, table, ROW_TEXT), method=ROW_TEXT)


def _columns(conn: Conn, oid: int) -> list[TupleRow]:
    rows = conn.execute(_COLUMNS_SQL, (oid,)).fetchall()
    return sorted(rows, key=lambda r: str(r[0]))


def _named(conn: Conn, table: Table, types: _Types, want: str | None) -> TableFingerprint:
    """A named-hash entry: ``want`` is the per-table method a backup's entry recorded (the
    restore side), None to decide it here (the dump side)."""
    rel = conn.execute(_REL_SQL, (table.schema, table.name)).fetchone()
    if rel is None:
        raise psycopg.errors.UndefinedTable(f"relation {table.qualified} does not exist")
    oid, kind, populated, viewdef = int(rel[0]), str(rel[1]), bool(rel[2]), rel[3]
    cols = _columns(conn, oid)
    sig = "\n".join(f"{c[0]} {c[1]}.{c[2]}({c[3]})" for c in cols)
    entry = TableFingerprint(columns=hashlib.sha256(sig.encode()).hexdigest()[:16])
    if kind == "m":
        entry = replace(entry, kind=MATVIEW, populated=populated)
        if not populated:
            return entry
    row = sql.SQL("ROW({})").format(
        sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(str(c[0]))) for c in cols)
    )
    target = sql.SQL("ONLY {}").format(sql.Identifier(table.schema, table.name))
    method = want
    if method is None:
        method = NAMED_TEXT
        if types.available and types.columns_hashable([(c[4], c[5]) for c in cols]):
            method = NAMED_RECORD
    got = _named_query(conn, method, target, row)
    if got is None:  # "could not identify a hash function": text
        method = NAMED_TEXT
        got = _named_query(conn, method, target, row)
    assert got is not None
    entry = replace(entry, rows=got.rows, hash=got.hash, method=method)
    if kind == "m" and want is None:
        # fresh: the view holds what its query gives now (in this snapshot)
        query = sql.SQL("(" + str(viewdef).strip().rstrip(";") + ")")
        try:
            with conn.transaction():
                now = _named_query(conn, method, query, row, raise_all=True)
        except psycopg.Error:
            now = None
        entry = replace(entry, fresh=now == got)
    return entry


def _named_query(
    conn: Conn,
    method: str,
    target: sql.Composable,
    row: sql.Composable,
    *,
    raise_all: bool = False,
) -> TableFingerprint | None:
    q = sql.SQL(_NAMED_QUERIES[method]).format(target, row)
    try:
        with conn.transaction():  # a savepoint (or a transaction in autocommit)
            r = conn.execute(q).fetchone()
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFunction):
        if raise_all or method != NAMED_RECORD:
            raise
        return None
    assert r is not None
    return TableFingerprint(rows=int(r[0]), hash=str(r[1]))


class _Types:
    """Which column types hash by value alone (see the module docstring), in one database."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._known: dict[int, bool] = {}
        self._collations: dict[int, bool] = {0: True}
        self.available = conn.info.server_version >= 140000  # hash_record_extended

    def columns_hashable(self, cols: list[tuple[int, int]]) -> bool:
        return self._all(cols, 0)

    def row_hashable(self, table: Table) -> bool:
        if not self.available:
            return False
        cols = self._conn.execute(
            "SELECT a.atttypid, a.attcollation FROM pg_catalog.pg_attribute a"
            " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0"
            " AND NOT a.attisdropped",
            (table.schema, table.name),
        ).fetchall()
        return self._all(cols, 0)

    def _all(self, cols: Sequence[Sequence[int]], depth: int) -> bool:
        """Every (type, collation) pair hashes by value."""
        return all(self._deterministic(int(c)) and self._hashable(int(t), depth) for t, c in cols)

    def _hashable(self, typ: int, depth: int) -> bool:
        if typ in _STABLE_HASH:
            return True
        if typ in _NOT_ARRAYS or depth > 20:
            return False
        if typ not in self._known:
            self._known[typ] = self._lookup(typ, depth + 1)
        return self._known[typ]

    def _lookup(self, typ: int, depth: int) -> bool:
        row = self._conn.execute(
            "SELECT t.typtype::text, t.typbasetype, t.typelem, t.typrelid,"
            " t.typlen = -1 AND t.typsubscript = 'pg_catalog.array_subscript_handler'::regproc"
            " FROM pg_catalog.pg_type t WHERE t.oid = %s",
            (typ,),
        ).fetchone()
        if row is None:
            return False
        kind, base, elem, relid, is_array = str(row[0]), int(row[1]), int(row[2]), row[3], row[4]
        if kind == "d":  # a domain: its base type (the column carries the domain's collation)
            return self._hashable(base, depth)
        if kind == "b" and elem and is_array:  # elements, under the column's collation
            return self._hashable(elem, depth)
        if kind == "c":
            cols = self._conn.execute(
                "SELECT atttypid, attcollation FROM pg_catalog.pg_attribute"
                " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                (relid,),
            ).fetchall()
            return self._all(cols, depth)
        if kind in ("r", "m"):
            key = "rngtypid" if kind == "r" else "rngmultitypid"
            rng = self._conn.execute(
                sql.SQL(
                    "SELECT rngsubtype, rngcollation FROM pg_catalog.pg_range WHERE {} = %s"
                ).format(sql.Identifier(key)),
                (typ,),
            ).fetchall()
            return bool(rng) and self._all(rng, depth)
        return False  # enums, pseudo-types, other base types (OID hashes, no hash, extensions)

    def _deterministic(self, coll: int) -> bool:
        if coll not in self._collations:
            row = self._conn.execute(
                "SELECT collisdeterministic FROM pg_catalog.pg_collation WHERE oid = %s", (coll,)
            ).fetchone()
            self._collations[coll] = bool(row and row[0])
        return self._collations[coll]


def _many(
    conn: Conn, tables: list[Table], method: str, expected: TablePrints | None = None
) -> TablePrints:
    if method == NAMED:
        types = _Types(conn)
        out = {}
        for t in tables:
            entry = (expected or {}).get(t.qualified)
            out[t.qualified] = _named(conn, t, types, entry.method if entry else None)
        return out
    if method != METHOD:
        return {t.qualified: _query(conn, t, method) for t in tables}
    types = _Types(conn)
    return {t.qualified: _record_hash(conn, t, types) for t in tables}


def fingerprint(
    conn: Conn, tables: list[Table], *, in_transaction: bool = False, method: str = METHOD
) -> TablePrints:
    """Fingerprint of each table (partitioned parents are covered by their partitions)."""
    pin_settings(conn, local=in_transaction)
    return _many(conn, [t for t in tables if not t.partitioned], method)


def matviews(conn: Conn) -> list[Table]:
    """The database's materialized views (outside extensions), checked by named-hash."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm'"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid ="
        " 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
        " ORDER BY 1, 2"
    ).fetchall()
    return [Table(str(s), str(n)) for s, n in rows]


def compare(expected: TablePrints, actual: TablePrints) -> list[TableCheck]:
    return [TableCheck(name, expected[name], actual.get(name)) for name in sorted(expected)]


def existing(conn: Conn, tables: list[Table]) -> list[Table]:
    """Those ``tables`` that exist (no data is read)."""
    return [
        t
        for t in tables
        if conn.execute(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
            " AND c.relkind IN ('r', 'p', 'm')",
            (t.schema, t.name),
        ).fetchone()
    ]


def method_of(options: Mapping[str, object]) -> str:
    """The fingerprint method a backup was taken with (the first one before it was kept)."""
    return str(options.get("fingerprint_method", "md5"))


def fingerprint_existing(
    conn: Conn, tables: list[Table], method: str = METHOD, expected: TablePrints | None = None
) -> TablePrints:
    """Fingerprint of those ``tables`` that exist; missing ones are omitted.  For a
    named-hash backup, ``expected`` (the backup's entries) gives each table's method."""
    pin_settings(conn)
    return _many(conn, existing(conn, tables), method, expected)
