"""``pgsafe archive enable``: point a server's archive_command at this repository.

Sets ``wal_level`` (to ``replica`` unless already ``replica``/``logical``),
``archive_mode`` (``on`` unless ``always``) and ``archive_command`` with ALTER SYSTEM,
reloads, and says whether a restart is needed.  Before touching the server it proves
that the server's OS user can run the command, write the repository and encode with
its codec (a passphrase file it cannot read shows up here).

ALTER SYSTEM cannot run in a transaction block, so the three settings cannot change
together.  They are validated first (no control characters), then applied in the order
that is harmless if a later one fails — ``archive_command`` first (inert while archiving
is off), ``wal_level``, and ``archive_mode`` last — and on a failure every setting already
changed is put back as ``postgresql.auto.conf`` had it (``ALTER SYSTEM SET`` to its old
value there, or ``ALTER SYSTEM RESET`` when it was not there).  :func:`apply_settings`
holds that rule behind the small :class:`SystemSettings` protocol; :func:`snapshot` and
:func:`put_back` let the demo return a server's archiving to what it was.

The command, and the probe that proves it first, are :mod:`pgsafe.endpoint`'s:
``--repo`` for one repository, ``--config FILE`` for ``[[repos]]`` (so every repository
gets each segment), and ``PGSAFE_AGE_PASSPHRASE_FILE=...`` in front for a
passphrase-encrypted repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg import sql

from pgsafe.cluster import runas
from pgsafe.cluster.local import run_dir_for
from pgsafe.endpoint.command import repo_location
from pgsafe.endpoint.proven import archive_command
from pgsafe.errors import BadInput, OperationFailed
from pgsafe.pg.connect import Connection, connect
from pgsafe.pg.process import run_short
from pgsafe.pg.programs import find_program
from pgsafe.physical.server import ServerFacts, facts, require_superuser
from pgsafe.repo.repository import Repository
from pgsafe.wal import server_record


@dataclass
class EnableResult:
    archive_command: str
    runtime: str
    repo: str
    server: str
    changed: dict[str, list[str]] = field(default_factory=dict)  # name -> [old, new]
    restart_needed: bool = False
    restarted: bool = False


def archive_command_for(
    home: Path, repo: Repository, user: runas.OsUser | None, config: Path | None = None
) -> str:
    """The archive_command for ``repo`` (proven to work as ``user`` first)."""
    return archive_command(home, repo, user, config)[0]


def _desired(f: ServerFacts, command: str) -> dict[str, str]:
    want: dict[str, str] = {}
    if f.wal_level not in ("replica", "logical"):
        want["wal_level"] = "replica"
    if f.archive_mode not in ("on", "always"):
        want["archive_mode"] = "on"
    if f.archive_command != command:
        want["archive_command"] = command
    return want


ARCHIVE_SETTINGS = ("archive_command", "wal_level", "archive_mode")  # the order applied


class SystemSettings(Protocol):
    """What :func:`apply_settings` needs of a server: ALTER SYSTEM SET and RESET."""

    def alter(self, name: str, value: str) -> None: ...

    def reset(self, name: str) -> None: ...


@dataclass(frozen=True)
class AutoConf:
    """The settings ``postgresql.auto.conf`` holds (name -> value); absent: not set there."""

    values: Mapping[str, str]


class AlterSystem:
    """:class:`SystemSettings` on a psycopg connection (autocommit)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def alter(self, name: str, value: str) -> None:
        self.conn.execute(
            sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
        )

    def reset(self, name: str) -> None:
        self.conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))


def check_setting(name: str, value: str) -> None:
    """A value for ALTER SYSTEM: no control character (a newline would end its line)."""
    bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise BadInput(
            f"the value for {name} would contain the control character {bad!r}",
            hint="use a repository path and a config path without newlines or control characters",
        )


def snapshot(conn: Connection) -> AutoConf:
    """The archiving settings as ``postgresql.auto.conf`` holds them now."""
    rows = conn.execute(
        "SELECT name, setting FROM pg_file_settings"
        " WHERE sourcefile LIKE %s AND name = ANY(%s) ORDER BY seqno",
        ("%/postgresql.auto.conf", list(ARCHIVE_SETTINGS)),
    ).fetchall()
    return AutoConf({str(n): str(v) for n, v in rows})  # the last entry of a name wins


def put_back(target: SystemSettings, name: str, before: AutoConf) -> None:
    """``name`` as ``before`` had it: its old value, or no entry at all."""
    if name in before.values:
        target.alter(name, before.values[name])
    else:
        target.reset(name)


def apply_settings(target: SystemSettings, want: Mapping[str, str], before: AutoConf) -> list[str]:
    """Apply ``want`` in :data:`ARCHIVE_SETTINGS` order; on a failure put back what was
    changed and raise :class:`OperationFailed` naming both.  Returns the names applied."""
    unknown = set(want) - set(ARCHIVE_SETTINGS)
    if unknown:
        raise ValueError(f"not an archiving setting: {sorted(unknown)}")
    for name, value in want.items():
        check_setting(name, value)
    done: list[str] = []
    for name in ARCHIVE_SETTINGS:
        if name not in want:
            continue
        try:
            target.alter(name, want[name])
        except Exception as exc:
            raise _rolled_back(target, name, exc, done, before) from None
        done.append(name)
    return done


def _rolled_back(
    target: SystemSettings, failed: str, exc: Exception, done: list[str], before: AutoConf
) -> OperationFailed:
    stuck: list[str] = []
    for name in reversed(done):
        try:
            put_back(target, name, before)
        except Exception:
            stuck.append(name)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    message = f"ALTER SYSTEM SET {failed} failed: {reason}"
    if stuck:
        return OperationFailed(
            message + f"; {', '.join(stuck)} could not be put back",
            hint="put them back by hand: "
            + "; ".join(f"ALTER SYSTEM RESET {n}" for n in stuck)
            + " (or SET them to your values), then SELECT pg_reload_conf()",
        )
    if done:
        message += f"; {', '.join(done)} put back as before"
    return OperationFailed(message, hint="nothing was changed; fix the cause and run it again")


def restart_server(data_directory: str, major: int, user: runas.OsUser | None) -> None:
    """``pg_ctl restart`` (fast) of a server whose data directory is on this machine."""
    if not Path(data_directory, "postmaster.pid").exists():
        raise OperationFailed(
            f"cannot restart the server: its data directory {data_directory} is not here",
            hint="restart PostgreSQL with your service manager (e.g. systemctl restart postgresql)",
        )
    run_dir = run_dir_for(Path(data_directory))
    log = run_dir / "server.log" if run_dir.is_dir() else Path(data_directory, "restart.log")
    exited = run_short(
        [find_program("pg_ctl", major), "-D", data_directory, "-l", str(log), "-m", "fast",
         "-w", "-t", "120", "restart"],
        timeout=180, popen_kwargs=runas.popen_kwargs(user),
    )  # fmt: skip
    if not exited.ok:
        raise OperationFailed(f"pg_ctl restart failed: {exited.first_error()}")


def enable(
    conninfo: str,
    repo: Repository,
    home: Path,
    *,
    restart: bool = False,
    config: Path | None = None,
) -> EnableResult:
    """``config``: the file whose ``[[repos]]`` the repository came from."""
    with connect(conninfo) as conn:
        f = facts(conn)
        require_superuser(f, "archive enable")
        server_record.ensure(repo, f.record())
        user = runas.server_user()
        command, rt = archive_command(home, repo, user, config)
        want = _desired(f, command)
        result = EnableResult(command, rt.kind, ep_location(repo, config), repo.server)
        current = {"wal_level": f.wal_level, "archive_mode": f.archive_mode,
                   "archive_command": f.archive_command}  # fmt: skip
        for name, value in want.items():
            check_setting(name, value)  # before anything is changed
        try:
            before = snapshot(conn)
        except psycopg.Error as exc:
            raise OperationFailed(f"cannot read the server's settings: {exc}") from None
        for name in apply_settings(AlterSystem(conn), want, before):
            result.changed[name] = [current[name], want[name]]
        try:
            conn.execute("SELECT pg_reload_conf()")
        except psycopg.Error as exc:
            raise OperationFailed(f"pg_reload_conf() failed: {exc}") from None
    result.restart_needed = "wal_level" in want or "archive_mode" in want
    if result.restart_needed and restart:
        owner = _datadir_owner(f.data_directory) or user
        restart_server(f.data_directory, f.major, owner)
        result.restarted = True
        result.restart_needed = False
    return result


def _datadir_owner(path: str) -> runas.OsUser | None:
    """The OS user owning a data directory, when that is not us (pg_ctl must run as it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_uid == os.geteuid():
        return None
    return runas.server_user()


def ep_location(repo: Repository, config: Path | None) -> str:
    return str(config.absolute()) if config else repo_location(repo)


def archive_settings(repo: Repository, home: Path, config: Path | None = None) -> dict[str, str]:
    """postgresql.conf settings (quoted) that archive a *new* cluster into ``repo``."""
    command = archive_command_for(home, repo, runas.server_user(), config)
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": "'" + command.replace("'", "''") + "'",
    }
