"""The recovery settings ``recover`` writes into a restored data directory: the target,
the timeline, the restore_command and the end action in ``postgresql.auto.conf``, quoted
as ALTER SYSTEM does (a control character is refused, never written), and
``recovery.signal``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pgsafe.cluster import datafiles, runas
from pgsafe.errors import BadInput
from pgsafe.recovery.plan import Plan
from pgsafe.recovery.targets import Target, format_time
from pgsafe.wal import names


def quote(value: str) -> str:
    """A string value for a PostgreSQL configuration file, quoted as ALTER SYSTEM does.

    Inside quotes PostgreSQL's configuration parser reads backslash escapes, so both
    ``\\`` and ``'`` are doubled.  A control character (a newline, NUL, ...) has no
    place in a setting and could end the line early: it is refused (exit 2), never
    written.
    """
    bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise BadInput(
            f"a recovery setting would contain the control character {bad!r}: {value!r}",
            hint="give targets, paths and names without newlines or control characters",
        )
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def comment(text: str) -> str:
    """``text`` safe for one comment line: every control character written escaped
    (a backup id comes from the repository, which pgsafe does not trust)."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def recovery_settings(
    target: Target, plan: Plan, restore_command: str, *, promote: bool, archive: bool
) -> dict[str, str]:
    s = {
        "restore_command": quote(restore_command),
        "recovery_target_timeline": quote(str(plan.timeline)),
        "hot_standby": "on",
    }
    if target.kind == "time" and target.time is not None:
        s["recovery_target_time"] = quote(format_time(target.time))
    elif target.kind == "xid":
        s["recovery_target_xid"] = quote(str(target.xid))
    elif target.kind == "lsn" and target.lsn is not None:
        s["recovery_target_lsn"] = quote(names.format_lsn(target.lsn))
    elif target.kind == "name":
        s["recovery_target_name"] = quote(target.name or "")
    elif target.kind == "immediate":
        s["recovery_target"] = quote("immediate")
    if target.kind not in ("latest", "immediate"):
        s["recovery_target_inclusive"] = "on" if target.inclusive else "off"
    if target.kind != "latest":
        s["recovery_target_action"] = quote("promote" if promote else "pause")
    if not archive:
        s["archive_mode"] = "off"
    return s


def write_config(pgdata: Path, settings: dict[str, str], plan: Plan) -> None:
    """The recovery settings and signal file, written without following a link (the
    directory was filled from the repository and belongs to the server's user)."""
    user = runas.server_user()
    for leftover in ("postmaster.pid", "postmaster.opts", "standby.signal"):
        datafiles.remove(pgdata, leftover)
    if not datafiles.exists(pgdata, "postgresql.conf"):  # config kept outside (Debian's /etc)
        datafiles.create(pgdata, "postgresql.conf", "# written by pgsafe recover\n", user)
    if not datafiles.exists(pgdata, "pg_hba.conf"):
        datafiles.create(pgdata, "pg_hba.conf", "local all all trust\n", user)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    what = comment(f"backup {plan.backup.id}, {plan.target.describe()}")
    lines = [f"\n# pgsafe recover {stamp}: {what}\n"]
    lines += [f"{k} = {v}\n" for k, v in settings.items()]
    datafiles.append(pgdata, "postgresql.auto.conf", "".join(lines), user)
    datafiles.create(pgdata, "recovery.signal", "", user)
