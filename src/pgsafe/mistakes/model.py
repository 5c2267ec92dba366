"""What ``pgsafe mistakes`` finds: one destructive transaction and what it touched.

This is the contract between the scan (``pgsafe.mistakes``) and the undo
(``pgsafe.undo``): the undo validates an xid against the transactions the scan lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ChangeKind(StrEnum):
    """What a transaction did to one table."""

    DELETE = "delete"
    UPDATE = "update"
    TRUNCATE = "truncate"
    DROP_TABLE = "drop-table"
    DROP_SCHEMA = "drop-schema"
    DROP_DATABASE = "drop-database"


@dataclass(frozen=True)
class TableChange:
    """One table's share of a destructive transaction.

    ``table`` is ``schema.name`` when the relfilenode could be named, else ``None``
    (``relfilenode`` is always there); ``rows`` counts heap records (rows deleted or
    updated; 0 for TRUNCATE and DROP, whose row count the WAL does not hold).
    """

    kind: ChangeKind
    relfilenode: int
    table: str | None
    rows: int


@dataclass(frozen=True)
class Mistake:
    """One committed transaction that deleted, changed, truncated or dropped data.

    ``lsn`` is the commit record's LSN (``0/16B3740``), ``timeline`` the timeline it
    was committed on; ``undo`` is the exact command line that undoes it.
    ``subxacts`` are its committed subtransactions (savepoints, exception blocks: their
    rows carry these ids), ``multixacts`` the multixacts its updates made (the ``xmax``
    of a row deleted or updated while another transaction held a lock on it).
    """

    xid: int
    commit_time: datetime
    lsn: str
    timeline: int
    database: str | None
    database_oid: int
    changes: tuple[TableChange, ...]
    undo: str = ""
    subxacts: tuple[int, ...] = ()
    multixacts: tuple[int, ...] = ()

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.changes)


@dataclass(frozen=True)
class MistakeRequest:
    """What to look for.  ``table`` is ``schema.name`` or a bare name; ``min_rows``
    applies to DELETE and UPDATE (a TRUNCATE or DROP has no row count in the WAL and
    is always listed); ``conninfo`` names the live server (its catalogs name the
    tables that still exist, its ``pg_wal`` adds what is not archived yet): with
    ``live_optional`` an unreachable server is a note, not an error.  ``limit`` keeps
    the newest ones; ``command`` starts each undo command line; ``xid`` keeps only
    that transaction (what ``undo XID`` checks its xid against).  ``name_dropped``:
    relations no catalog names are named by a throwaway recovery to just before each
    transaction that touched them (done by :func:`pgsafe.api.mistakes`, through
    :mod:`pgsafe.undo.catalog`; the scan itself ignores it)."""

    since: datetime | None = None
    until: datetime | None = None
    database: str | None = None
    table: str | None = None
    kinds: frozenset[ChangeKind] = frozenset()
    min_rows: int = 0
    conninfo: str | None = None
    live_optional: bool = True
    limit: int | None = None
    command: str = "pgsafe"
    xid: int | None = None
    name_dropped: bool = False


@dataclass(frozen=True)
class MistakeReport:
    """The window read and the mistakes found in it, oldest commit first."""

    start_time: datetime | None
    end_time: datetime | None  # the last commit read
    start_lsn: str
    end_lsn: str | None  # the last record read
    backup_id: str | None  # the base backup the window starts at
    segments: int  # archived segments read
    live_segments: int  # segments read from the live server's pg_wal
    mistakes: tuple[Mistake, ...]
    omitted: int = 0  # older ones left out by the limit
    notes: tuple[str, ...] = field(default=())
    # the largest of the omitted ones (a TRUNCATE or DROP first, then by rows; the older
    # first among equals), at most LARGEST: what a busy server's newest hid
    largest_omitted: tuple[Mistake, ...] = ()
