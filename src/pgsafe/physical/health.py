"""``pgsafe check``: archiving end to end, each line a ✓ or a ✗ with its fix.

Configuration (wal_level, archive_mode, archive_command pointing at this repository),
the server's OS user running pgsafe and writing the repository, a WAL switch arriving in
the repository within a timeout, the archiver's error state, a base backup present, and
each PostgreSQL program pgsafe uses, found for the server's major (path and version) or
missing with the package that provides it (:mod:`pgsafe.pg.toolset`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from pgsafe.cluster import runas
from pgsafe.endpoint.command import endpoint_for, is_s3, repo_location
from pgsafe.endpoint.probe import check_repo_writable
from pgsafe.endpoint.runtime import wal_runtime
from pgsafe.errors import PgsafeError
from pgsafe.models.kinds import BackupKind, BackupStatus
from pgsafe.pg.connect import connect
from pgsafe.pg.toolset import tools_for
from pgsafe.physical.server import facts
from pgsafe.physical.switch import force_switch, wait_archived
from pgsafe.repo.repository import Repository
from pgsafe.wal import server_record


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class CheckReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str, fix: str | None = None) -> None:
        self.checks.append(Check(name, ok, detail, None if ok else fix))


def _points_here(command: str, repo: Repository, config: Path | None = None) -> bool:
    try:
        words = shlex.split(command.replace("%%", "%"))
    except ValueError:
        return False
    flag, want = ("--config", str(config)) if config else ("--repo", repo_location(repo))
    if "wal-push" not in words or flag not in words:
        return False
    given = words[words.index(flag) + 1]
    server = words[words.index("--server") + 1] if "--server" in words else "main"
    same = given == want if "://" in want else Path(given).absolute() == Path(want)
    return same and server == repo.server


def check(
    conninfo: str, repo: Repository, home: Path, timeout: float = 60, config: Path | None = None
) -> CheckReport:
    """``config``: the file whose ``[[repos]]`` the repository came from."""
    r = CheckReport()
    where = (
        f"--config {shlex.quote(str(config))}"
        if config
        else f"--repo {shlex.quote(repo_location(repo))}"
    )
    if repo.server != "main":
        where += f" --server {shlex.quote(repo.server)}"
    enable = f"pgsafe {where} archive enable --restart"
    with connect(conninfo) as conn:
        f = facts(conn)
        r.add("connection", True, f"PostgreSQL {f.version} (major {f.major})")
        r.add("wal_level", f.wal_level in ("replica", "logical"), f"wal_level = {f.wal_level}",
              f"{enable} (sets wal_level = replica; needs a restart)")  # fmt: skip
        r.add("archive_mode", f.archive_mode in ("on", "always"),
              f"archive_mode = {f.archive_mode}", f"{enable} (needs a restart)")  # fmt: skip
        here = _points_here(f.archive_command, repo, config)
        r.add("archive_command", here, f.archive_command or "(empty)",
              f"{enable} (archive_command must push into this repository)")  # fmt: skip
        record = server_record.load(repo)
        same = record is None or record.system_identifier == f.system_identifier
        r.add("system identifier", same,
              f"server {f.system_identifier}, repository "
              f"{record.system_identifier if record else '(not recorded yet)'}",
              "this --repo/--server belongs to another cluster: use another --server")  # fmt: skip
        user = runas.server_user()
        try:
            rt = wal_runtime(home, user, s3=is_s3(repo))
            check_repo_writable(rt, repo, user, endpoint_for(repo, config=config))
            r.add("server user runs pgsafe", True, f"{rt.kind}: {' '.join(rt.argv)}")
        except PgsafeError as exc:
            r.add("server user runs pgsafe", False, exc.message, exc.hint)
        row = conn.execute(
            "SELECT last_failed_wal, last_failed_time > coalesce(last_archived_time, '-infinity')"
            " FROM pg_stat_archiver"
        ).fetchone()
        failing = bool(row and row[1])
        r.add("archiver", not failing,
              f"last failure: {row[0]}" if failing and row else "no failure since the last success",
              "see the server log for the archive_command error")  # fmt: skip
        if f.archive_mode in ("on", "always") and here and not f.in_recovery:
            try:
                name = force_switch(conn)
                took = wait_archived(repo, name, timeout)
                r.add("WAL switch archived", True, f"{name} arrived in {took:.1f} s")
            except PgsafeError as exc:
                r.add("WAL switch archived", False, exc.message, exc.hint)
        else:
            r.add("WAL switch archived", False, "archiving is not on for this repository",
                  f"{enable}")  # fmt: skip
    backups = [
        m
        for m in repo.list_backups()
        if m.kind == BackupKind.PHYSICAL and m.status == BackupStatus.OK
    ]
    r.add("base backup", bool(backups),
          f"{len(backups)} base backup(s), newest {backups[-1].id}" if backups else "none",
          f"pgsafe {where} backup")  # fmt: skip
    for tool in tools_for(f.major):
        r.add(f"{tool.name} for {f.major}", tool.found, tool.detail, tool.fix)
    return r
