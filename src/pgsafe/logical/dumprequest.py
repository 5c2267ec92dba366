"""What ``pgsafe dump`` is asked for (:class:`DumpRequest`), shared by the dump and the
pg_dump command lines it builds (:mod:`pgsafe.logical.pgdump`)."""

from __future__ import annotations

from dataclasses import dataclass

from pgsafe.logical.tables import Table
from pgsafe.pg.conninfo import ConnOptions


@dataclass(frozen=True)
class DumpRequest:
    conn: ConnOptions
    format: str = "custom"
    tables: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    schema_only: bool = False
    data_only: bool = False
    jobs: int = 1
    label: str | None = None
    all_databases: bool = False
    excluded: tuple[Table, ...] = ()
    sequences: tuple[Table, ...] = ()
    context: tuple[Table, ...] = ()  # ancestors dumped for their definitions only
    lock_wait_timeout: float = 300.0  # seconds pg_dump (and the fingerprint) wait for a lock
    # planner statistics in the dump (pg_dump --statistics, PostgreSQL 18+): None means
    # "where the server has them", True insists (refused before 18), False leaves them out
    statistics: bool | None = None
