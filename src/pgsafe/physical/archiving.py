"""``pgsafe archive enable``: point a server's archive_command at this repository.

Sets ``wal_level`` (to ``replica`` unless already ``replica``/``logical``),
``archive_mode`` (``on`` unless ``always``) and ``archive_command`` with ALTER SYSTEM,
reloads, and says whether a restart is needed.  Before touching the server it proves
that the server's OS user can run the command and write the repository.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from pgsafe import runtime
from pgsafe.cluster import runas
from pgsafe.cluster.local import run_dir_for
from pgsafe.errors import OperationFailed
from pgsafe.pg.connect import connect
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import first_error_line
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


def repo_url(repo: Repository) -> str:
    return str(Path(repo.storage.url).absolute())


def check_repo_writable(rt: runtime.Runtime, repo: Repository, user: runas.OsUser | None) -> None:
    """Run ``wal-push --probe`` as the server's user; raise with a fix when it fails."""
    argv = [*rt.argv, "--repo", repo_url(repo), "--server", repo.server, "wal-push", "--probe"]
    proc = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=60,
        stdin=subprocess.DEVNULL, **runas.popen_kwargs(user),
    )  # fmt: skip
    if proc.returncode != 0:
        who = user.name if user else "the server's OS user"
        raise OperationFailed(
            f"the OS user {who!r} cannot write the repository {repo_url(repo)}: "
            f"{first_error_line(proc.stderr)}",
            hint=f"give it the repository: chown -R {who} {shlex.quote(repo_url(repo))}",
        )


def archive_command_for(home: Path, repo: Repository, user: runas.OsUser | None) -> str:
    rt = runtime.wal_runtime(home, user)
    check_repo_writable(rt, repo, user)
    return runtime.command_line(rt, repo_url(repo), repo.server, "wal-push %p")


def _desired(f: ServerFacts, command: str) -> dict[str, str]:
    want: dict[str, str] = {}
    if f.wal_level not in ("replica", "logical"):
        want["wal_level"] = "replica"
    if f.archive_mode not in ("on", "always"):
        want["archive_mode"] = "on"
    if f.archive_command != command:
        want["archive_command"] = command
    return want


def restart_server(data_directory: str, major: int, user: runas.OsUser | None) -> None:
    """``pg_ctl restart`` (fast) of a server whose data directory is on this machine."""
    if not Path(data_directory, "postmaster.pid").exists():
        raise OperationFailed(
            f"cannot restart the server: its data directory {data_directory} is not here",
            hint="restart PostgreSQL with your service manager (e.g. systemctl restart postgresql)",
        )
    run_dir = run_dir_for(Path(data_directory))
    log = run_dir / "server.log" if run_dir.is_dir() else Path(data_directory, "restart.log")
    proc = subprocess.run(
        [find_program("pg_ctl", major), "-D", data_directory, "-l", str(log), "-m", "fast",
         "-w", "-t", "120", "restart"],
        capture_output=True, text=True, check=False, timeout=180, stdin=subprocess.DEVNULL,
        **runas.popen_kwargs(user),
    )  # fmt: skip
    if proc.returncode != 0:
        raise OperationFailed(f"pg_ctl restart failed: {first_error_line(proc.stderr)}")


def enable(conninfo: str, repo: Repository, home: Path, *, restart: bool = False) -> EnableResult:
    with connect(conninfo) as conn:
        f = facts(conn)
        require_superuser(f, "archive enable")
        server_record.ensure(repo, f.record())
        user = runas.server_user()
        rt = runtime.wal_runtime(home, user)
        check_repo_writable(rt, repo, user)
        command = runtime.command_line(rt, repo_url(repo), repo.server, "wal-push %p")
        want = _desired(f, command)
        result = EnableResult(command, rt.kind, repo_url(repo), repo.server)
        current = {"wal_level": f.wal_level, "archive_mode": f.archive_mode,
                   "archive_command": f.archive_command}  # fmt: skip
        try:
            for name, value in want.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
                result.changed[name] = [current[name], value]
            conn.execute("SELECT pg_reload_conf()")
        except psycopg.Error as exc:
            raise OperationFailed(f"ALTER SYSTEM failed: {exc}") from None
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


def archive_settings(repo: Repository, home: Path) -> dict[str, str]:
    """postgresql.conf settings (quoted) that archive a *new* cluster into ``repo``."""
    user = runas.server_user()
    rt = runtime.wal_runtime(home, user)
    check_repo_writable(rt, repo, user)
    command = runtime.command_line(rt, repo_url(repo), repo.server, "wal-push %p")
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": "'" + command.replace("'", "''") + "'",
    }
