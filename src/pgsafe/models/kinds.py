"""Kinds and states as ``str`` enums.

Each member *is* its text (``BackupKind.LOGICAL == "logical"``), so the catalog, the
JSON output and every comparison with a plain string keep the same text as before;
the enum names the values that exist, in one place.  Fields read from a repository that
this pgsafe may not know all values of (a backup's status or format, written by a newer
pgsafe) stay ``str`` in the catalog and are compared against these members.
"""

from __future__ import annotations

from enum import StrEnum


class BackupKind(StrEnum):
    """What a backup is: a pg_dump archive, or a base backup of the data directory."""

    LOGICAL = "logical"
    PHYSICAL = "physical"


class BackupStatus(StrEnum):
    """A backup's status: ``ok`` and ``failed`` are stored; ``DAMAGED`` is shown for a
    catalog entry that cannot be read (it is never written)."""

    OK = "ok"
    FAILED = "failed"
    DAMAGED = "DAMAGED"


class BackupFormat(StrEnum):
    """How a backup's data is stored: pg_dump's formats, ``all`` (pg_dumpall), ``tar``
    (a base backup)."""

    CUSTOM = "custom"
    PLAIN = "plain"
    DIRECTORY = "directory"
    ALL = "all"
    TAR = "tar"


class TargetKind(StrEnum):
    """Where a recovery stops."""

    TIME = "time"
    XID = "xid"
    LSN = "lsn"
    NAME = "name"
    LATEST = "latest"
    IMMEDIATE = "immediate"


class VerificationKind(StrEnum):
    """How a backup was proven: ``verify`` (checksums, restore, fingerprints) or
    ``drill`` (the same, run as a scheduled exercise / PITR drill)."""

    VERIFY = "verify"
    DRILL = "drill"


class RecoveryState(StrEnum):
    """Where ``pgsafe recover`` left the data directory."""

    PLANNED = "planned"
    PREPARED = "prepared"
    PAUSED = "paused"
    PROMOTED = "promoted"


class HealthLevel(StrEnum):
    """A health item's level, and ``pgsafe status``'s verdict (the worst item)."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {HealthLevel.OK: 0, HealthLevel.WARN: 1, HealthLevel.FAIL: 2}


class RunOutcome(StrEnum):
    """How a scheduled job's run ended (the repository's run history)."""

    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    TIMEOUT = "timeout"
