"""What ``pgsafe undo`` and ``pgsafe restore-table`` are asked, and what they report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pgsafe.pg.conninfo import ConnOptions
from pgsafe.recovery.targets import TargetRequest


class OnConflict(StrEnum):
    """What to do with a row a later transaction inserted or changed again."""

    REFUSE = "refuse"  # the default: list the conflicts, change nothing (exit 2)
    SKIP = "skip"  # bring back everything else, leave the conflicting rows as they are
    OVERWRITE = "overwrite"  # the rows as they were before the mistake win


class RowAction(StrEnum):
    """What happens to one row (or, without a primary key, one row content)."""

    INSERT = "insert"  # deleted by the mistake: inserted again
    UPDATE = "update"  # changed by the mistake, untouched since: old values back
    UNCHANGED = "unchanged"  # already as it was: nothing to do
    CONFLICT = "conflict"  # changed or inserted again by a later transaction
    REMOVE = "remove"  # written by the mistake under a key it did not have before


class TableAction(StrEnum):
    ROWS = "rows"  # rows of an existing table come back
    CREATE = "create"  # a dropped table comes back whole (or under --as)


@dataclass(frozen=True)
class UndoRequest:
    """Undo transaction ``target`` (kind ``xid``), or everything after a ``time`` /
    ``name`` target, in database ``conn`` (the live server pgsafe backs up).  The
    tables' user triggers are held off while rows are written back (they would rewrite
    them) unless ``fire_triggers``."""

    target: TargetRequest
    conn: ConnOptions = field(default_factory=ConnOptions)
    tables: tuple[str, ...] = ()
    on_conflict: OnConflict = OnConflict.REFUSE
    as_name: str | None = None
    dry_run: bool = False
    timeout: float = 3600
    fire_triggers: bool = False  # let the tables' triggers run on the rows written back


@dataclass(frozen=True)
class RestoreTableRequest:
    """Table ``table`` as of ``target``, into the live database as ``as_name``."""

    table: str
    as_name: str
    target: TargetRequest
    conn: ConnOptions = field(default_factory=ConnOptions)
    dry_run: bool = False
    timeout: float = 3600


@dataclass(frozen=True)
class Conflict:
    """A row that a later transaction inserted or changed: its key (or content) and
    what it is now."""

    key: str
    now: str | None


@dataclass
class TablePlan:
    """One table's share of the undo."""

    table: str  # schema.name as stored
    action: TableAction
    kind: str  # what the mistake did: delete / update / truncate / drop-table / changed
    key: list[str]  # primary key columns ([] : whole row)
    counts: dict[RowAction, int] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    new_name: str | None = None  # CREATE under another name (--as)
    rows: int = 0  # CREATE: rows the table holds

    def describe(self) -> str:
        if self.action is TableAction.CREATE:
            name = f" as {self.new_name}" if self.new_name else ""
            return (
                f"{self.table}: {self.kind}: comes back whole{name} ({self.rows} rows, "
                "with its indexes, constraints, triggers and owned sequences)"
            )
        parts = [f"{n} {a}" for a, n in self.counts.items() if n]
        key = "primary key (" + ", ".join(self.key) + ")" if self.key else "whole rows"
        return f"{self.table}: {self.kind}: " + (", ".join(parts) or "nothing") + f"; by {key}"


@dataclass
class UndoResult:
    """The plan, and once applied whether it was committed."""

    target: str  # what the throwaway cluster was recovered to
    database: str
    xid: int | None
    tables: list[TablePlan] = field(default_factory=list)
    dry_run: bool = False
    applied: bool = False
    refused: bool = False  # conflicts and no --on-conflict: nothing was changed
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    operation: str = "undo"  # or "restore-table"

    @property
    def conflicts(self) -> int:
        return sum(len(t.conflicts) for t in self.tables)

    @property
    def rows_back(self) -> int:
        return sum(
            t.counts.get(RowAction.INSERT, 0) + t.counts.get(RowAction.UPDATE, 0)
            for t in self.tables
        ) + sum(t.rows for t in self.tables if t.action is TableAction.CREATE)

    def text(self) -> str:
        what = f"transaction {self.xid}" if self.xid is not None else self.target
        if self.operation == "undo":
            lines = [f"undo of {what} in database {self.database}"]
        else:
            lines = [f"{self.operation} as of {what} into database {self.database}"]
        lines += [f"  {t.describe()}" for t in self.tables]
        for t in self.tables:
            for c in t.conflicts[:20]:
                lines.append(f"  conflict in {t.table}: {c.key} is now {c.now or 'gone'}")
            if len(t.conflicts) > 20:
                lines.append(f"  ... and {len(t.conflicts) - 20} more conflicts in {t.table}")
        lines += [f"  note: {n}" for n in self.notes]
        if self.refused:
            lines.append(f"refused: {self.conflicts} conflicting rows; nothing was changed")
        elif self.dry_run:
            lines.append("dry run: nothing was changed")
        elif self.applied:
            lines.append(
                f"done in one transaction: {self.rows_back} rows back ({self.seconds:.1f} s)"
            )
        return "\n".join(lines)
