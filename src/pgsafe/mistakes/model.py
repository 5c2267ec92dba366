"""What ``pgsafe mistakes`` finds: one destructive transaction and what it touched.

This is the contract between the scan (``pgsafe.mistakes``) and the undo
(``pgsafe.undo``): the undo validates an xid against the transactions the scan lists.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """

    xid: int
    commit_time: datetime
    lsn: str
    timeline: int
    database: str | None
    database_oid: int
    changes: tuple[TableChange, ...]
    undo: str = ""

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.changes)
