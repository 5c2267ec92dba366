"""Recovery targets as the user gives them, validated (pure).

:func:`target_request` is the one reading of the target flags (``--time``, ``--xid``,
``--lsn``, ``--name``, ``--latest``, ``--immediate``) into a :class:`TargetRequest`,
for every command that takes them (``recover``, ``drill``); the request is parsed and
resolved against the repository into a :class:`Target` when the recovery is planned
(:func:`pgsafe.recovery.execute.resolve_target`).

Times are ISO 8601; a time without a zone is in the server's time zone (as recorded at
backup time), and is resolved to an aware instant before anything happens.

Every value here ends up in ``postgresql.auto.conf`` of a recovered cluster, so each is
checked to the shape PostgreSQL accepts before anything is written:

- a restore point name is checked by the one rule that ``pgsafe mark`` (which creates
  them) and ``recover --name`` (which targets them) share, ``wal.names.RESTORE_POINT``
  (applied by :func:`pgsafe.recovery.inventory.load_mark`);
- a transaction id is a 32-bit xid (3 .. 4294967295), or a 64-bit ``xid8`` as
  ``pg_current_xact_id()`` / ``txid_current()`` print it (epoch << 32 | xid).  PostgreSQL
  reads ``recovery_target_xid`` with ``strtou64`` and keeps only the low 32 bits, ignoring
  the epoch; pgsafe does the same reduction itself, so that what it prints, plans and
  writes is the xid PostgreSQL will stop at.  Anything of 2^64 or more is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from pgsafe.errors import BadInput
from pgsafe.models.kinds import TargetKind
from pgsafe.wal import names

KINDS = tuple(TargetKind)


@dataclass(frozen=True)
class Target:
    kind: str  # a TargetKind (one of KINDS)
    time: datetime | None = None  # aware, for "time"
    xid: int | None = None
    lsn: int | None = None  # for "lsn", and for a "name" recorded by pgsafe mark
    name: str | None = None
    inclusive: bool = True

    def describe(self) -> str:
        if self.kind == "time" and self.time is not None:
            return f"time {format_time(self.time)}"
        if self.kind == "xid":
            return f"transaction {self.xid}"
        if self.kind == "lsn" and self.lsn is not None:
            return f"LSN {names.format_lsn(self.lsn)}"
        if self.kind == "name":
            return f"restore point {self.name!r}"
        if self.kind == "immediate":
            return "the end of the base backup (immediate)"
        return "the end of the archived WAL (latest)"


@dataclass(frozen=True)
class TargetRequest:
    """A recovery target as asked for: its kind (one of :data:`KINDS`) and, for
    ``time`` / ``xid`` / ``lsn`` / ``name``, its text, not parsed yet."""

    kind: str = "latest"
    value: str | None = None

    def describe(self) -> str:
        return "the end of the archive" if self.kind == "latest" else f"{self.kind} {self.value}"


_FLAGS = "--time, --xid, --lsn, --name, --latest or --immediate"


def target_request(
    *,
    time: str | None = None,
    xid: str | None = None,
    lsn: str | None = None,
    name: str | None = None,
    latest: bool = False,
    immediate: bool = False,
    default: TargetRequest | None = None,
) -> TargetRequest:
    """The target the flags name.  Without ``default`` exactly one must be given
    (``recover``); with one, at most one, and none means ``default`` (``drill``).
    A flag given with an empty value counts as given (and is refused when parsed)."""
    given = [
        TargetRequest(kind, value)
        for kind, value in (("time", time), ("xid", xid), ("lsn", lsn), ("name", name))
        if value is not None
    ]
    given += [
        TargetRequest(kind) for kind, on in (("latest", latest), ("immediate", immediate)) if on
    ]
    if default is None and len(given) != 1:
        raise BadInput(f"give exactly one target: {_FLAGS}")
    if len(given) > 1:
        raise BadInput("give at most one recovery target")
    return given[0] if given else default or TargetRequest()


def format_time(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(sep=" ")


_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$"
)


def parse_time(text: str, server_zone: tzinfo) -> datetime:
    """ISO 8601 → aware datetime; zone-less means ``server_zone``; BadInput when malformed."""
    raw = text.strip()
    if not _TIME.match(raw):
        raise BadInput(
            f"malformed time {text!r}",
            hint="use ISO 8601, e.g. '2024-01-15 10:30:00' or '2024-01-15T10:30:00+01:00'",
        )
    fixed = raw[:-1] + "+00:00" if raw.endswith("Z") else raw
    fixed = re.sub(r"([+-]\d{2})$", r"\1:00", fixed)
    try:
        ts = datetime.fromisoformat(fixed)
    except ValueError as exc:
        raise BadInput(
            f"malformed time {text!r}: {exc}",
            hint="use ISO 8601, e.g. '2024-01-15 10:30:00' or '2024-01-15T10:30:00+01:00'",
        ) from None
    return ts.replace(tzinfo=server_zone) if ts.tzinfo is None else ts


_XID_HINT = (
    "give a transaction id such as 748 (txid_current() or pg_current_xact_id() values, "
    "with their epoch, are accepted too)"
)
_XID8_LIMIT = 1 << 64
_XID_LIMIT = 1 << 32


def parse_xid(text: str) -> int:
    """A 32-bit transaction id, from an xid or an xid8 (see the module doc)."""
    raw = text.strip()
    if not raw.isascii() or not raw.isdigit():
        raise BadInput(f"malformed transaction id {text!r}", hint=_XID_HINT)
    if len(raw) > 20 or int(raw) >= _XID8_LIMIT:
        raise BadInput(
            f"transaction id {text!r} is out of range (at most {_XID8_LIMIT - 1})",
            hint=_XID_HINT,
        )
    xid = int(raw) % _XID_LIMIT
    if xid < 3:
        raise BadInput(
            f"{text!r} is not a normal transaction id (0, 1 and 2 are reserved)",
            hint=_XID_HINT,
        )
    return xid


def parse_lsn(text: str) -> int:
    try:
        return names.parse_lsn(text)
    except ValueError:
        raise BadInput(
            f"malformed LSN {text!r}", hint="give it as PostgreSQL prints it: 0/3000148"
        ) from None
