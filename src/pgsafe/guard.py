"""``pgsafe guard -- COMMAND``: a backup (or restore point) first, then the risky command,
then the exact pgsafe command that undoes it.

With WAL archiving into this repository and a base backup to start from, a named
restore point is enough (instant, whole cluster: the undo is a point-in-time recovery
to just before the command).  Otherwise pgsafe takes a logical backup of the database
(custom format), and the undo is a ``restore --clean`` of it.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from pgsafe import clock
from pgsafe.config import state_home
from pgsafe.errors import BadInput, PgsafeError
from pgsafe.logical import dump
from pgsafe.pg.connect import connect
from pgsafe.pg.conninfo import ConnOptions, split_password
from pgsafe.physical import marks
from pgsafe.repo.repository import Repository


@dataclass
class GuardResult:
    command: list[str]
    exit_code: int
    method: str  # "restore point" | "logical backup"
    backup_id: str | None
    mark: str | None
    undo: str


def _archives_here(conninfo: str, repo: Repository) -> bool:
    with connect(conninfo) as conn:
        mode = str(conn.execute("SHOW archive_mode").fetchone()[0])  # type: ignore[index]
        command = str(conn.execute("SHOW archive_command").fetchone()[0])  # type: ignore[index]
    url = repo.storage.url
    return (
        mode in ("on", "always")
        and "wal-push" in command
        and (url in command or shlex.quote(url) in command)
    )


def guard(
    repo: Repository,
    conn: ConnOptions,
    command: list[str],
) -> GuardResult:
    if not command:
        raise BadInput("no command to guard", hint="pgsafe guard -d DB -- psql -f migration.sql")
    conninfo = conn.conninfo()
    repo_args = ["pgsafe", "--repo", repo.storage.url, "--server", repo.server]
    mark_name: str | None = None
    backup_id: str | None = None
    if _archives_here(conninfo, repo) and repo.latest("physical") is not None:
        mark_name = "guard-" + clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        marks.mark(conninfo, repo, mark_name)
        method = "restore point"
        pgdata_hint = str(state_home() / "recovered" / mark_name)
        undo = shlex.join(
            [
                *repo_args,
                "recover",
                "--pgdata",
                pgdata_hint,
                "--name",
                mark_name,
                "--start",
                "--promote",
            ]
        )
    else:
        m = dump.dump(
            repo,
            dump.DumpRequest(
                conn=conn,
                label="guard: " + shlex.join(command)[:200],
            ),
        )
        backup_id = m.id
        method = "logical backup"
        target, _ = split_password(conninfo)
        undo = shlex.join([*repo_args, "restore", m.id, "--clean", "-d", target])
    try:
        proc = subprocess.run(command, check=False)
    except OSError as exc:
        raise PgsafeError(
            f"cannot run {command[0]}: {exc.strerror}",
            hint=f"nothing was changed; the {method} stays",
        ) from None
    return GuardResult(command, proc.returncode, method, backup_id, mark_name, undo)
