"""The live server, when reachable: names of relations that still exist, and its pg_wal.

One connection per database asked about (``pg_filenode_relation`` answers only for the
database it runs in), opened on first use and closed by :meth:`LiveServer.close`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg

from pgsafe.errors import PgsafeError
from pgsafe.pg.connect import Connection, connect

_BY_FILENODE = """
SELECT c.oid::bigint, n.nspname::text, c.relname::text, c.relkind::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = pg_filenode_relation(%s, %s)
"""
_BY_OID = """
SELECT c.oid::bigint, n.nspname::text, c.relname::text, c.relkind::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = %s
"""
_PARENT = """
SELECT n.nspname::text || '.' || p.relname::text
  FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
  JOIN pg_namespace n ON n.oid = p.relnamespace
 WHERE i.inhrelid = %s AND p.relkind = 'p'
"""


@dataclass(frozen=True)
class LiveRelation:
    oid: int
    schema: str
    name: str
    kind: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class WalPosition:
    """Where the live server writes WAL: its pg_wal folder, timeline and flush LSN."""

    pg_wal: str
    timeline: int
    flush_lsn: str


class LiveServer:
    """A reachable server (``conninfo`` as the user gave it)."""

    def __init__(self, conninfo: str, dbname: str | None = None) -> None:
        self.conninfo = conninfo
        self._main = connect(conninfo, dbname=dbname) if dbname else connect(conninfo)
        rows = self._main.execute(
            "SELECT oid::bigint, datname::text, dattablespace::bigint, datallowconn"
            " FROM pg_database"
        ).fetchall()
        self._dbs = {int(r[0]): (str(r[1]), int(r[2]), bool(r[3])) for r in rows}
        self._conns: dict[int, Connection | None] = {}

    def close(self) -> None:
        for c in self._conns.values():
            if c is not None:
                c.close()
        self._main.close()

    def system_identifier(self) -> str:
        row = self._main.execute(
            "SELECT system_identifier::text FROM pg_control_system()"
        ).fetchone()
        return str(row[0]) if row else ""

    def database_name(self, oid: int) -> str | None:
        got = self._dbs.get(oid)
        return got[0] if got else None

    def database_names(self) -> set[str]:
        return {n for n, _, _ in self._dbs.values()}

    def database_oid(self, name: str) -> int | None:
        for oid, (n, _, _) in self._dbs.items():
            if n == name:
                return oid
        return None

    def _conn(self, db: int) -> Connection | None:
        if db not in self._conns:
            got = self._dbs.get(db)
            conn = None
            if got is not None and got[2]:
                with contextlib.suppress(PgsafeError):
                    conn = connect(self.conninfo, dbname=got[0])
            self._conns[db] = conn
        return self._conns[db]

    def _one(self, db: int, sql: str, args: tuple[int, ...]) -> LiveRelation | None:
        conn = self._conn(db)
        if conn is None:
            return None
        try:
            row = conn.execute(sql, args).fetchone()
        except psycopg.Error:
            return None
        return LiveRelation(int(row[0]), row[1], row[2], row[3]) if row else None

    def by_filenode(self, db: int, tablespace: int, relfilenode: int) -> LiveRelation | None:
        got = self._dbs.get(db)
        if got is not None and tablespace == got[1]:
            tablespace = 0  # pg_filenode_relation: 0 is the database's default tablespace
        return self._one(db, _BY_FILENODE, (tablespace, relfilenode))

    def by_oid(self, db: int, oid: int) -> LiveRelation | None:
        return self._one(db, _BY_OID, (oid,))

    def partition_parent(self, db: int, oid: int) -> str | None:
        conn = self._conn(db)
        if conn is None:
            return None
        try:
            row = conn.execute(_PARENT, (oid,)).fetchone()
        except psycopg.Error:
            return None
        return str(row[0]) if row else None

    def wal_position(self) -> WalPosition | None:
        """None on a standby or when the settings cannot be read (not a superuser)."""
        try:
            row = self._main.execute(
                "SELECT current_setting('data_directory'), pg_is_in_recovery(),"
                " (SELECT timeline_id FROM pg_control_checkpoint()),"
                " CASE WHEN pg_is_in_recovery() THEN NULL"
                " ELSE pg_current_wal_flush_lsn()::text END"
            ).fetchone()
        except psycopg.Error:
            return None
        if row is None or row[1]:
            return None
        return WalPosition(f"{row[0]}/pg_wal", int(row[2]), str(row[3]))
