"""Data fingerprints: per table, the row count and an order-independent content hash.

The hash is the sum, as numeric, of a 64-bit hash of each row's text form
(``hashtextextended(row::text, 0)``), so it needs no ORDER BY, works for tables without
a primary key, streams in constant memory and lets PostgreSQL scan in parallel.  Settings
that change a row's text form are pinned first.  Taken in the same snapshot as the dump,
it is what a restore must reproduce.  (The first method, the first 64 bits of md5, cost
2.8 times as much server CPU on pgbench's accounts table; backups record their method in
``options.fingerprint_method`` and are compared with the same one.  PostgreSQL's
hash functions give other values on big-endian machines: compare on the same kind.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgsafe.logical.tables import Table

PINNED = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, MDY'",
    "SET IntervalStyle = 'postgres'",
    "SET bytea_output = 'hex'",
    "SET extra_float_digits = 1",
)

METHOD = "hashtextextended"
_QUERIES = {
    "hashtextextended": "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text"
    " FROM {} AS t",
    "md5": "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint"
    "::numeric), 0)::text FROM {} AS t",
}

EMPTY = {"rows": 0, "hash": "0"}


@dataclass(frozen=True)
class TableCheck:
    table: str
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.expected is not None and self.expected == self.actual

    def detail(self) -> str:
        if self.actual is None:
            rows = self.expected["rows"] if self.expected else "?"
            return f"missing after restore (expected {rows} rows)"
        if self.expected is None:
            return "not in the backup"
        e, a = self.expected["rows"], self.actual["rows"]
        if e != a:
            return f"rows: expected {e}, got {a}"
        if self.expected["hash"] != self.actual["hash"]:
            return f"{a} rows, content differs"
        return f"{a} rows, content identical"


def pin_settings(conn: psycopg.Connection[Any], *, local: bool = False) -> None:
    for stmt in PINNED:
        conn.execute(stmt.replace("SET ", "SET LOCAL ", 1) if local else stmt)


def table_fingerprint(
    conn: psycopg.Connection[Any], table: Table, method: str = METHOD
) -> dict[str, Any]:
    q = sql.SQL(_QUERIES[method]).format(sql.Identifier(table.schema, table.name))
    row = conn.execute(q).fetchone()
    assert row is not None
    return {"rows": int(row[0]), "hash": str(row[1])}


def fingerprint(
    conn: psycopg.Connection[Any],
    tables: list[Table],
    *,
    in_transaction: bool = False,
    method: str = METHOD,
) -> dict[str, dict[str, Any]]:
    """Fingerprint of each table (partitioned parents are covered by their partitions)."""
    pin_settings(conn, local=in_transaction)
    return {t.qualified: table_fingerprint(conn, t, method) for t in tables if not t.partitioned}


def compare(
    expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]
) -> list[TableCheck]:
    return [TableCheck(name, expected[name], actual.get(name)) for name in sorted(expected)]


def existing(conn: psycopg.Connection[Any], tables: list[Table]) -> list[Table]:
    """Those ``tables`` that exist (no data is read)."""
    return [
        t
        for t in tables
        if conn.execute(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
            " AND c.relkind IN ('r', 'p')",
            (t.schema, t.name),
        ).fetchone()
    ]


def method_of(options: dict[str, Any]) -> str:
    """The fingerprint method a backup was taken with (the first one before it was kept)."""
    return str(options.get("fingerprint_method", "md5"))


def fingerprint_existing(
    conn: psycopg.Connection[Any], tables: list[Table], method: str = METHOD
) -> dict[str, dict[str, Any]]:
    """Fingerprint of those ``tables`` that exist; missing ones are omitted."""
    pin_settings(conn)
    out: dict[str, dict[str, Any]] = {}
    for t in tables:
        schema, name = t.schema, t.name
        exists = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
            " AND c.relkind IN ('r', 'p')",
            (schema, name),
        ).fetchone()
        if exists:
            out[t.qualified] = table_fingerprint(conn, t, method)
    return out
