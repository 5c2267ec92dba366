"""Which mistakes a request keeps: time, database, table, kind and size."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime

from pgsafe.errors import BadInput
from pgsafe.mistakes.model import ChangeKind, Mistake, MistakeRequest, TableChange
from pgsafe.mistakes.naming import Namer

ROW_KINDS = frozenset({ChangeKind.DELETE, ChangeKind.UPDATE})


def table_matches(wanted: str, change: TableChange) -> bool:
    """``schema.name`` matches exactly; a bare name matches that table in any schema."""
    if change.table is None:
        return wanted == str(change.relfilenode)
    if "." in wanted:
        return change.table == wanted
    return change.table.split(".", 1)[1] == wanted


@dataclass(frozen=True)
class Filter:
    since: datetime | None = None
    until: datetime | None = None
    database_oids: frozenset[int] | None = None
    table: str | None = None
    kinds: frozenset[ChangeKind] = frozenset()
    min_rows: int = 0
    xid: int | None = None

    @classmethod
    def of(cls, request: MistakeRequest, namer: Namer) -> Filter:
        if request.since and request.until and request.until < request.since:
            raise BadInput("--until is before --since", hint="give --since before --until")
        if request.min_rows < 0:
            raise BadInput("--min-rows must be 0 or more", hint="e.g. --min-rows 10")
        oids = None
        if request.database is not None:
            oids = frozenset(namer.database_oids(request.database))
            if not oids:
                known = ", ".join(sorted(namer.database_names())) or "none known"
                raise BadInput(
                    f"no database {request.database!r} in the live server or the catalog maps",
                    hint=f"databases: {known}",
                )
        return cls(request.since, request.until, oids, request.table, request.kinds,
                   request.min_rows, request.xid)  # fmt: skip

    def may_keep(self, rows: int, drops: bool, xid: int) -> bool:
        """False when no classification of a transaction (``rows`` deleted or updated
        in all, ``drops``: it dropped relfilenodes or a database) can pass: the cheap
        test made before naming its tables."""
        if self.xid is not None and xid != self.xid:
            return False
        if drops:
            return True
        if self.kinds and not self.kinds & ROW_KINDS:
            return False
        return rows >= self.min_rows

    def fewest_rows(self) -> int:
        """The fewest rows deleted or updated that :meth:`may_keep` accepts of a
        transaction that drops nothing (whatever its xid; ``sys.maxsize`` when none)."""
        if self.kinds and not self.kinds & ROW_KINDS:
            return sys.maxsize
        return self.min_rows

    def in_window(self, xid: int, time: datetime) -> bool:
        """The tests on a transaction's xid and commit time."""
        if self.xid is not None and xid != self.xid:
            return False
        if self.since is not None and time < self.since:
            return False
        return self.until is None or time <= self.until

    def kept_changes(self, changes: tuple[TableChange, ...]) -> tuple[TableChange, ...]:
        """The changes the table and kind filters keep (what :meth:`__call__` weighs)."""
        if self.table is not None:
            changes = tuple(c for c in changes if table_matches(self.table, c))
        if self.kinds:
            changes = tuple(c for c in changes if c.kind in self.kinds)
        return changes

    def __call__(self, m: Mistake) -> bool:
        if not self.in_window(m.xid, m.commit_time):
            return False
        if self.database_oids is not None and m.database_oid not in self.database_oids:
            return False
        changes = self.kept_changes(m.changes)
        if not changes:
            return False
        if any(c.kind not in ROW_KINDS for c in changes):
            return True  # a TRUNCATE or DROP has no row count: always shown
        return sum(c.rows for c in changes) >= self.min_rows
