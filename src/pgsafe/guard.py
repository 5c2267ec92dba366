"""``pgsafe guard -- COMMAND``: a backup (or restore point) first, then the risky command,
then the exact pgsafe command that undoes it.

With WAL archiving into this repository and a base backup to start from, a named
restore point is enough: pgsafe creates it, switches WAL and waits until the restore
point's segment is archived (so that the undo works at once, not after some later
switch), then runs the command.  The undo is ``pgsafe undo --name guard-...``: a
throwaway cluster recovered to the restore point, and the rows the command deleted or
changed back in the live database (the cluster is not rolled back).  Otherwise pgsafe
takes a logical backup of the database (custom format), and the undo is a
``restore --clean`` of it.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from pgsafe import clock
from pgsafe.errors import BadInput, OperationFailed, PgsafeError
from pgsafe.logical import dump
from pgsafe.pg.connect import connect
from pgsafe.pg.conninfo import ConnOptions, split_password
from pgsafe.physical import marks
from pgsafe.physical.switch import switch_and_wait
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


ARCHIVE_TIMEOUT = 60.0


def _mark_archived(conninfo: str, repo: Repository, name: str, timeout: float) -> None:
    """Create restore point ``name``, switch WAL, wait until its segment is archived."""
    marks.mark(conninfo, repo, name)
    try:
        switch_and_wait(conninfo, repo, timeout=timeout)
    except OperationFailed as exc:
        raise OperationFailed(
            f"restore point {name} was created, but its WAL did not reach the repository "
            f"within {timeout:.0f} s ({exc.message}); the command was not run",
            hint="check archive_command and pg_stat_archiver on the server (`pgsafe check`), "
            "then run guard again",
        ) from None


def guard(
    repo: Repository,
    conn: ConnOptions,
    command: list[str],
    *,
    archive_timeout: float = ARCHIVE_TIMEOUT,
) -> GuardResult:
    if not command:
        raise BadInput("no command to guard", hint="pgsafe guard -d DB -- psql -f migration.sql")
    conninfo = conn.conninfo()
    repo_args = ["pgsafe", "--repo", repo.storage.url, "--server", repo.server]
    mark_name: str | None = None
    backup_id: str | None = None
    if _archives_here(conninfo, repo) and repo.latest("physical") is not None:
        mark_name = "guard-" + clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        _mark_archived(conninfo, repo, mark_name, archive_timeout)
        method = "restore point"
        target, _ = split_password(conninfo)
        undo = shlex.join([*repo_args, "undo", "--name", mark_name, "-d", target or ""])
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
