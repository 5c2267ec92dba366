"""SQL against a bench cluster: a connection, a statement, one value, the archiver's
``.ready`` backlog, and the connection flags of PostgreSQL's programs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from pgsafe.cluster.local import LocalCluster

from .constants import DB


def q(c: LocalCluster, sql: str) -> Any:
    """One value (``execute`` is for statements that return no rows)."""
    with psycopg.connect(c.conninfo(), autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def backlog(c: LocalCluster) -> int:
    """The ``.ready`` files waiting for archive_command."""
    return len(list((c.datadir / "pg_wal" / "archive_status").glob("*.ready")))


def conn_args(c: LocalCluster, db: str = DB) -> list[str]:
    """Connection flags for psql, pg_dump, pgbench, pgsafe... (``-d`` last)."""
    return ["-h", str(c.run_dir), "-p", str(c.port), "-U", "postgres", "-d", db]


@contextlib.contextmanager
def psycopg_conn(c: LocalCluster, db: str | None = None) -> Iterator[Any]:
    with psycopg.connect(c.conninfo(db or "postgres"), autocommit=True) as conn:
        yield conn


def execute(c: LocalCluster, statement: str, db: str | None = None) -> None:
    """A statement that returns no rows (``q`` is for one value)."""
    with psycopg_conn(c, db) as conn:
        conn.execute(statement)


def wait_drained(c: LocalCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while backlog(c) and time.monotonic() < deadline:
        time.sleep(0.1)
