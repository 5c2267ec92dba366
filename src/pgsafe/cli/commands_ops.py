"""Operations: expire, keep, status, metrics, guard."""

from __future__ import annotations

import click

from pgsafe import clock, jsonshape
from pgsafe.cli.common import (
    conn,
    conn_options,
    emit,
    global_options,
    human_size,
    open_repo,
    settings,
)
from pgsafe.errors import BadInput
from pgsafe.status import health, metrics


@click.command("expire")
@click.option(
    "--keep-last", type=click.IntRange(1), default=None, help="keep the N newest backups per series"
)
@click.option("--keep-days", type=float, default=None, help="keep backups younger than D days")
@click.option("--dry-run", is_flag=True, help="print what would be removed, remove nothing")
@global_options
def expire_cmd(keep_last: int | None, keep_days: float | None, dry_run: bool) -> None:
    """Apply the retention policy: remove expired backups and the WAL no kept backup needs."""
    from pgsafe import api

    req = api.ExpireRequest(keep_last, keep_days, dry_run=dry_run, config=settings().raw)
    repo = open_repo()
    r = api.expire(repo, req)
    plan = r.plan
    removed = plan.remove if dry_run else r.removed_backups
    wal = plan.remove_wal if dry_run else r.removed_wal
    doc = jsonshape.expiry(r, dry_run)
    verb = "would remove" if dry_run else "removed"
    lines = []
    for d in plan.decisions:
        mark = "keep  " if d.keep else ("REMOVE" if d.id not in r.skipped else "skip  ")
        why = "; ".join(d.reasons) if d.keep else "expired"
        lines.append(f"{mark} {d.id}  ({why})")
    lines.append(f"{verb} {len(removed)} backup(s) and {len(wal)} WAL file(s)")
    if plan.oldest_needed_wal:
        lines.append(f"WAL from {plan.oldest_needed_wal} onwards is kept")
    for b in r.incomplete:
        lines.append(f"{'would remove' if dry_run else 'removed'} interrupted backup {b}")
    for b in r.skipped:
        lines.append(f"skipped {b}: it came into use while expiring")
    for bad in r.damaged:
        lines.append(f"left DAMAGED {bad.id}: {bad.reason}")
    if r.wal_kept_for_damaged:
        lines.append("no WAL removed: a DAMAGED entry may be a base backup that needs it")
    for key in r.leftovers:
        lines.append(f"{verb} leftover {key}")
    emit(doc, "\n".join(lines))


@click.command("keep")
@click.argument("backup_id")
@click.option("--release", is_flag=True, help="unpin: let the retention policy decide again")
@global_options
def keep_cmd(backup_id: str, release: bool) -> None:
    """Pin a backup so that expire never removes it (or --release the pin)."""
    m = open_repo().pin(backup_id, keep=not release)
    emit(
        {"id": m.id, "keep": m.keep},
        f"{m.id} {'is pinned: expire keeps it' if m.keep else 'is no longer pinned'}",
    )


COMMANDS: list[click.Command] = [expire_cmd, keep_cmd]


def _health_conninfo(
    dbname: str | None, host: str | None, port: int | None, username: str | None
) -> str | None:
    if not any((dbname, host, port, username)):
        return None
    return conn(dbname, host, port, username).conninfo()


@click.command("status")
@conn_options
@global_options
def status_cmd(
    dbname: str | None, host: str | None, port: int | None, username: str | None
) -> None:
    """Health for people and monitoring: exit 0 when OK, 1 on WARN or FAIL."""
    repo = open_repo()
    th = health.thresholds_from(settings().raw)
    h = health.collect(repo, th, clock.now(), _health_conninfo(dbname, host, port, username))

    def text() -> str:
        lines = [f"pgsafe status of server {h.server} in {h.repo}: {h.level}"]
        mark = {health.OK: "✓", health.WARN: "!", health.FAIL: "✗"}
        lines += [f"  {mark[i.level]} {i.level:<4} {i.name:<16} {i.detail}" for i in h.items]
        free = human_size(h.free_bytes) if h.free_bytes is not None else "?"
        lines.append(f"  repository: {human_size(h.repo_bytes)} stored, {free} free")
        return "\n".join(lines)

    emit(h.to_json(), text, quiet_text=h.level)
    if h.level != health.OK:
        raise click.exceptions.Exit(1)


@click.command("metrics")
@conn_options
@global_options
def metrics_cmd(
    dbname: str | None, host: str | None, port: int | None, username: str | None
) -> None:
    """Print the Prometheus text format: ages, sizes, counts, last results."""
    repo = open_repo()
    th = health.thresholds_from(settings().raw)
    text = metrics.render(repo, th, clock.now(), _health_conninfo(dbname, host, port, username))
    click.echo(text, nl=False)


COMMANDS += [status_cmd, metrics_cmd]


@click.command(
    "guard", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@conn_options
@global_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def guard_cmd(
    dbname: str | None,
    host: str | None,
    port: int | None,
    username: str | None,
    command: tuple[str, ...],
) -> None:
    """Backup (or restore point) first, then run a risky COMMAND, then print the undo."""
    from pgsafe.guard import guard

    repo = open_repo(create=True)
    r = guard(
        repo,
        conn(dbname, host, port, username),
        list(command),
    )
    what = f"backup {r.backup_id}" if r.backup_id else f"restore point {r.mark}"
    text = (
        f"guard: took {r.method} ({what}), then ran: {' '.join(r.command)}\n"
        f"guard: the command exited with {r.exit_code}\n"
        f"guard: to undo it, run:\n  {r.undo}"
    )
    doc = {
        "command": r.command,
        "exit_code": r.exit_code,
        "method": r.method,
        "backup_id": r.backup_id,
        "mark": r.mark,
        "undo": r.undo,
    }
    s = settings()
    if s.json:
        emit(doc, "")
    else:
        click.echo(text, err=True)
    if r.exit_code != 0:
        raise click.exceptions.Exit(r.exit_code if r.exit_code < 126 else 1)


COMMANDS += [guard_cmd]


@click.command("drill")
@click.argument("backup_id", required=False)
@click.option("--latest", is_flag=True, help="drill the newest backup (of --kind)")
@click.option(
    "--kind",
    type=click.Choice(["physical", "logical"]),
    default=None,
    help="with --latest: the newest backup of this kind",
)
@click.option("--time", "target_time", default=None, help="recover to this time, not the end")
@click.option("--xid", default=None, help="recover to this transaction id")
@click.option("--lsn", default=None, help="recover to this LSN")
@click.option("--name", "target_name", default=None, help="recover to this restore point")
@click.option("--immediate", is_flag=True, help="recover only to consistency")
@click.option("--check", "checks", multiple=True, help="a query that must return true")
@click.option(
    "--check-db", default="postgres", show_default=True, help="database the checks run in"
)
@global_options
def drill_cmd(
    backup_id: str | None,
    latest: bool,
    kind: str | None,
    target_time: str | None,
    xid: str | None,
    lsn: str | None,
    target_name: str | None,
    immediate: bool,
    checks: tuple[str, ...],
    check_db: str,
) -> None:
    """The full proof: restore into a throwaway cluster, recover, pg_verifybackup,
    pg_amcheck, fingerprints and checks; recorded in the catalog (exit 3 on failure)."""
    from pgsafe.config import state_home
    from pgsafe.recovery.targets import TargetRequest, target_request
    from pgsafe.verify.drill import drill

    if bool(backup_id) == latest:
        raise BadInput("give a backup id or --latest", hint="`pgsafe list` shows the ids")
    target = target_request(
        time=target_time, xid=xid, lsn=lsn, name=target_name, immediate=immediate,
        default=TargetRequest(),
    )  # fmt: skip
    repo = open_repo()
    if latest:
        newest = repo.latest(kind)
        if newest is None:
            raise BadInput("no backup to drill", hint="take one with pgsafe backup or dump")
        m = newest
    else:
        m = repo.resolve(str(backup_id))
    result = drill(
        repo,
        m,
        state_home(),
        target=target,
        checks=list(checks),
        check_db=check_db,
    )
    emit(
        result.to_json(),
        lambda: result.render(f"drill of {m.id}"),
        quiet_text="ok" if result.ok else "FAILED",
    )
    if not result.ok:
        raise click.exceptions.Exit(3)


COMMANDS += [drill_cmd]
