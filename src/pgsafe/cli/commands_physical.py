"""Physical and PITR commands: archive enable, wal-push/wal-get (help only: they run
through the lean entry), backup, mark, info, recover, check."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from pgsafe.cli.common import conn, conn_options, emit, global_options, progress, settings
from pgsafe.config import state_home
from pgsafe.repo.repository import Repository


def _repo(create: bool = False) -> Repository:
    s = settings()
    return Repository.open(s.repo, s.server, create=create)


@click.group("archive")
@global_options
def archive_group() -> None:
    """Continuous WAL archiving into the repository."""


@archive_group.command("enable")
@conn_options
@click.option("--restart", is_flag=True, help="restart the server when the change needs it")
@global_options
def archive_enable_cmd(
    dbname: str | None, host: str | None, port: int | None, username: str | None, restart: bool
) -> None:
    """Set wal_level, archive_mode and archive_command (ALTER SYSTEM) for this repository."""
    from pgsafe.physical.archiving import enable

    repo = _repo(create=True)
    r = enable(conn(dbname, host, port, username).conninfo(), repo, state_home(), restart=restart)

    def text() -> str:
        lines = [f"archive_command = {r.archive_command}"]
        for name, (old, new) in r.changed.items():
            if name != "archive_command":
                lines.append(f"{name}: {old} -> {new}")
        if r.restarted:
            lines.append("server restarted: archiving is on")
        elif r.restart_needed:
            lines.append(
                "restart needed: wal_level/archive_mode take effect after a restart "
                "(pgsafe archive enable --restart, or your service manager)"
            )
        else:
            lines.append("archiving is on (configuration reloaded, no restart needed)")
        return "\n".join(lines)

    emit(asdict(r), text)


def _lean(args: list[str]) -> None:
    from pgsafe.wal.entry import main

    code = main(args)
    if code:
        raise click.exceptions.Exit(code)


@click.command("wal-push", context_settings={"ignore_unknown_options": True})
@click.argument("path")
@global_options
def wal_push_cmd(path: str) -> None:
    """archive_command endpoint: store one WAL file (pgsafe --repo R wal-push %p)."""
    s = settings()
    _lean(["--repo", s.repo or "", "--server", s.server, "wal-push", path])


@click.command("wal-get")
@click.argument("name")
@click.argument("dest")
@global_options
def wal_get_cmd(name: str, dest: str) -> None:
    """restore_command endpoint (pgsafe --repo R wal-get %f %p); exit 1 when not archived."""
    s = settings()
    _lean(["--repo", s.repo or "", "--server", s.server, "wal-get", name, dest])


def _backup_doc(m: Any) -> dict[str, Any]:
    return {
        "id": m.id, "kind": m.kind, "status": m.status, "started_at": m.started_at,
        "finished_at": m.finished_at, "size_bytes": m.size_bytes, "raw_bytes": m.raw_bytes,
        "pg_version": m.pg_version, "system_identifier": m.system_identifier,
        **{k: v for k, v in m.physical.items() if k not in ("backup_label", "wal_ranges")},
    }  # fmt: skip


@click.command("backup")
@conn_options
@click.option("--label", type=str, default=None, help="a label for the backup")
@global_options
def backup_cmd(
    dbname: str | None, host: str | None, port: int | None, username: str | None, label: str | None
) -> None:
    """Physical base backup (pg_basebackup, tar, WAL included) into the repository."""
    from pgsafe.physical.basebackup import backup

    s = settings()
    repo = _repo(create=True)
    m = backup(
        conn(dbname, host, port, username).conninfo(),
        repo,
        label=label,
        level=s.compress_level,
        progress=progress("base backup"),
    )
    doc = _backup_doc(m)
    summary = (
        f"{m.id}\n  timeline {doc['timeline']}, LSN {doc['start_lsn']} .. {doc['stop_lsn']},"
        f" {m.raw_bytes} bytes -> {m.size_bytes} stored"
    )
    emit(doc, m.id if s.quiet else summary)


COMMANDS: list[click.Command] = [archive_group, wal_push_cmd, wal_get_cmd, backup_cmd]
