"""Operations: expire, keep, status, metrics, guard."""

from __future__ import annotations

from typing import Any

import click

from pgsafe import clock
from pgsafe.cli.common import emit, global_options, open_repo, settings
from pgsafe.retention import expire as expire_mod
from pgsafe.retention.policy import from_config


@click.command("expire")
@click.option("--keep-last", type=int, default=None, help="keep the N newest backups per series")
@click.option("--keep-days", type=float, default=None, help="keep backups younger than D days")
@click.option("--dry-run", is_flag=True, help="print what would be removed, remove nothing")
@global_options
def expire_cmd(keep_last: int | None, keep_days: float | None, dry_run: bool) -> None:
    """Apply the retention policy: remove expired backups and the WAL no kept backup needs."""
    policy = from_config(settings().raw, keep_last, keep_days)
    repo = open_repo()
    r = expire_mod.expire(repo, policy, clock.now(), dry_run=dry_run)
    plan = r.plan
    removed = plan.remove if dry_run else r.removed_backups
    wal = plan.remove_wal if dry_run else r.removed_wal
    doc: dict[str, Any] = {
        "dry_run": dry_run,
        "remove": removed,
        "remove_wal": wal,
        "skipped": r.skipped,
        "oldest_needed_wal": plan.oldest_needed_wal,
        "decisions": [vars(d) for d in plan.decisions],
    }
    verb = "would remove" if dry_run else "removed"
    lines = []
    for d in plan.decisions:
        mark = "keep  " if d.keep else ("REMOVE" if d.id not in r.skipped else "skip  ")
        why = "; ".join(d.reasons) if d.keep else "expired"
        lines.append(f"{mark} {d.id}  ({why})")
    lines.append(f"{verb} {len(removed)} backup(s) and {len(wal)} WAL file(s)")
    if plan.oldest_needed_wal:
        lines.append(f"WAL from {plan.oldest_needed_wal} onwards is kept")
    for b in r.skipped:
        lines.append(f"skipped {b}: it came into use while expiring")
    emit(doc, "\n".join(lines))


@click.command("keep")
@click.argument("backup_id")
@click.option("--release", is_flag=True, help="unpin: let the retention policy decide again")
@global_options
def keep_cmd(backup_id: str, release: bool) -> None:
    """Pin a backup so that expire never removes it (or --release the pin)."""
    repo = open_repo()
    with repo.lock("catalog"):
        m = repo.resolve(backup_id)
        m.keep = not release
        repo.save(m)
    emit(
        {"id": m.id, "keep": m.keep},
        f"{m.id} {'is pinned: expire keeps it' if m.keep else 'is no longer pinned'}",
    )


COMMANDS: list[click.Command] = [expire_cmd, keep_cmd]
