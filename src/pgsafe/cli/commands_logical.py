"""Logical commands: dump, list, show, restore, verify, export."""

from __future__ import annotations

from pathlib import Path

import click

from pgsafe import jsonshape
from pgsafe.cli.common import (
    conn,
    conn_options,
    emit,
    global_options,
    human_size,
    info,
    label_option,
    open_repo,
    progress,
    table,
)
from pgsafe.config import state_home
from pgsafe.errors import BadInput
from pgsafe.logical import contents as contents_mod
from pgsafe.logical import dump as dump_mod
from pgsafe.pg.conninfo import dbname_of
from pgsafe.repo.catalog import DamagedEntry, Manifest


@click.command("dump")
@conn_options
@click.option(
    "--format",
    "-F",
    "fmt",
    type=click.Choice(dump_mod.FORMATS),
    default="custom",
    show_default=True,
    help="pg_dump format",
)
@click.option("-t", "--table", "tables", multiple=True, help="dump only this table (repeatable)")
@click.option("-T", "--exclude-table", "exclude", multiple=True, help="leave this table out")
@click.option("--schema-only", is_flag=True, help="definitions only, no data")
@click.option("--data-only", is_flag=True, help="data only, no definitions")
@click.option(
    "--statistics/--no-statistics",
    default=None,
    help="carry the planner statistics, so a restored database needs no ANALYZE "
    "[default: on from PostgreSQL 18]",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="parallel dump jobs (directory format)",
)
@click.option(
    "--label", type=str, default=None, callback=label_option, help="a note stored with the backup"
)
@click.option(
    "--all", "all_databases", is_flag=True, help="every database, with roles and tablespaces"
)
@click.option(
    "--lock-wait-timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="seconds to wait for a table another session holds locked, then fail",
)
@global_options
def dump_cmd(
    dbname: str | None,
    host: str | None,
    port: int | None,
    username: str | None,
    fmt: str,
    tables: tuple[str, ...],
    exclude: tuple[str, ...],
    schema_only: bool,
    data_only: bool,
    statistics: bool | None,
    jobs: int,
    label: str | None,
    all_databases: bool,
    lock_wait_timeout: float,
) -> None:
    """Logical backup of one database (or --all) into the repository."""
    from pgsafe import api  # the operations (loaded by the command that runs)

    req = dump_mod.DumpRequest(
        conn=conn(dbname, host, port, username),
        format=fmt,
        tables=tables,
        exclude=exclude,
        schema_only=schema_only,
        data_only=data_only,
        jobs=jobs,
        label=label,
        all_databases=all_databases,
        lock_wait_timeout=lock_wait_timeout,
        statistics=statistics,
    )
    dump_mod.validate(req)
    repo = open_repo(create=True)
    what = "all databases" if all_databases else (dbname_of(req.conn.conninfo()) or "database")
    m = api.dump(repo, req, progress=progress(f"dump {what}"))
    ratio = f"{m.raw_bytes / m.size_bytes:.1f}x" if m.size_bytes else "-"
    ntables = sum(len(v) for v in m.fingerprint.values())
    text = (
        f"backup {m.id} done: {m.format}, {human_size(m.raw_bytes)} dumped, "
        f"{human_size(m.size_bytes)} stored ({ratio}), {ntables} tables fingerprinted"
    )
    emit(jsonshape.backup(m), text, quiet_text=m.id)


@click.command("list")
@global_options
def list_cmd() -> None:
    """Every backup: id, kind, database, format, times, size, status, last verification."""
    repo = open_repo()
    entries = repo.entries()
    from pgsafe.repo.storage.mirror import MirrorStorage

    several = isinstance(repo.storage, MirrorStorage)
    held = {e.id: repo.holders(repo.object_key(e.id, "manifest.json")) for e in entries}
    rows = []
    damaged: list[DamagedEntry] = []
    for e in entries:
        if isinstance(e, DamagedEntry):
            damaged.append(e)
            cells = [e.id, "?", "?", "-", "-", "-", "DAMAGED", "-"]
            rows.append([*([",".join(held[e.id])] if several else []), *cells])
            continue
        last = e.last_verification
        verified = "never" if last is None else f"{'ok' if last.ok else 'FAILED'} {last.at[:16]}"
        rows.append(
            [
                *([",".join(held[e.id])] if several else []),
                e.id,
                e.kind,
                e.database or "(all)",
                e.format or "-",
                e.started_at[:19],
                human_size(e.size_bytes),
                e.status,
                verified,
            ]
        )
    headers = ["ID", "KIND", "DATABASE", "FORMAT", "STARTED", "SIZE", "STATUS", "VERIFIED"]
    if several:
        headers.insert(0, "REPOS")
    text = table(headers, rows) if rows else "no backups yet"
    if damaged:
        text += "\n" + "\n".join(f"DAMAGED {d.reason}" for d in damaged)
        text += "\n(`pgsafe show ID` names what is wrong; pgsafe never removes such an entry)"
    docs = [
        {
            **(jsonshape.backup(e) if isinstance(e, Manifest) else jsonshape.damaged_backup(e)),
            "repos": held[e.id],
        }
        for e in entries
    ]
    emit({"backups": docs}, text)


@click.command("show")
@click.argument("backup_id")
@click.option("--contents", is_flag=True, help="list the objects inside (as pg_restore -l)")
@global_options
def show_cmd(backup_id: str, contents: bool) -> None:
    """One backup's details."""
    repo = open_repo()
    m = repo.resolve(backup_id)
    listing: list[str] = contents_mod.contents(repo, m) if contents else []
    doc = jsonshape.backup_detail(m, listing if contents else None)

    def text() -> str:
        lines = [
            f"backup      {m.id}",
            f"kind        {m.kind} ({m.format})",
            f"database    {m.database or '(all)'}",
            f"label       {m.label or '-'}",
            f"server      {m.server}, PostgreSQL {m.pg_version}, system id {m.system_identifier}",
            f"taken       {m.started_at} → {m.finished_at}",
            f"size        {human_size(m.size_bytes)} stored, {human_size(m.raw_bytes)} raw",
            f"status      {m.status}",
        ]
        if m.kind == "logical":
            lines.append(f"statistics  {_statistics_line(m)}")
        for o in m.objects:
            lines.append(f"  object    {o.name}  {human_size(o.size)}  sha256 {o.sha256[:16]}…")
        for db, tables in m.fingerprint.items():
            for name, f in tables.items():
                label = f"{db}/{name}" if db else name
                lines.append(f"  table     {label}: {'?' if f.rows is None else f.rows} rows")
        for v in m.verifications[-3:]:
            lines.append(f"  {v.kind:<9} {v.at} {'ok' if v.ok else 'FAILED'}")
        if contents:
            lines.append("contents:")
            lines += [f"  {ln}" for ln in listing]
        return "\n".join(lines)

    emit(doc, text)


def _statistics_line(m: Manifest) -> str:
    if m.options.get("statistics"):
        return "carried (pg_dump --statistics): a restore plans without ANALYZE"
    if m.options.get("schema_only"):
        return "none (schema only)"
    return "not carried: run ANALYZE after a restore"


@click.command("restore")
@click.argument("backup_id")
@conn_options
@click.option("--create", is_flag=True, help="create the target database (-d NAME)")
@click.option("--clean", is_flag=True, help="drop existing objects before restoring them")
@click.option("-t", "--table", "tables", multiple=True, help="restore only this table")
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 1024), default=1, show_default=True, help="parallel jobs"
)
@click.option("--dry-run", is_flag=True, help="print the plan, change nothing")
@global_options
def restore_cmd(
    backup_id: str,
    dbname: str | None,
    host: str | None,
    port: int | None,
    username: str | None,
    create: bool,
    clean: bool,
    tables: tuple[str, ...],
    jobs: int,
    dry_run: bool,
) -> None:
    """Put a logical backup back: same database (--clean), a new one (--create), one table."""
    from pgsafe import api  # the operations (loaded by the command that runs)

    repo = open_repo()
    m = repo.resolve(backup_id)
    req = api.RestoreRequest(
        backup=m.id,
        conn=conn(dbname, host, port, username),
        create=create,
        clean=clean,
        tables=tables,
        jobs=jobs,
        dry_run=dry_run,
    )
    if not dry_run:
        info(f"restoring {m.id} ...")
    result = api.restore(repo, req)
    p = result.plan
    doc = jsonshape.restore(m.id, result, dry_run)
    lines = [f"plan for restoring {m.id} into {p.target} on {p.server}:"]
    lines += [f"  {i}. {s}" for i, s in enumerate(p.steps, 1)]
    if result.done:
        lines += [f"  ! {w}" for w in result.warnings]
        for c in result.checks:
            lines.append(f"  {'✓' if c.ok else '✗'} {c.table}: {c.detail()}")
        n = len(result.checks)
        lines.append(
            f"restored {m.id} into {p.target}: "
            + (
                f"{n} tables match the backup's fingerprints"
                if result.ok
                else "FINGERPRINT MISMATCH"
            )
        )
    else:
        lines.append("dry run: nothing was changed")
    emit(doc, "\n".join(lines))
    if result.done and not result.ok:
        raise click.exceptions.Exit(3)


@click.command("verify")
@click.argument("backup_id", required=False)
@click.option("--latest", is_flag=True, help="verify the newest backup")
@global_options
def verify_cmd(backup_id: str | None, latest: bool) -> None:
    """Checksums, a restore into a throwaway PostgreSQL, and a fingerprint comparison."""
    from pgsafe import api  # the operations (loaded by the command that runs)

    if bool(backup_id) == latest:
        raise BadInput("give a backup id or --latest", hint="`pgsafe list` shows the ids")
    repo = open_repo()
    m = repo.resolve("latest" if latest else str(backup_id))
    info(f"verifying {m.id} ...")
    result = api.verify(repo, api.VerifyRequest(m.id, home=state_home()))
    emit(result.to_json(), lambda: result.render(f"verification of {m.id}"))
    if not result.ok:
        raise click.exceptions.Exit(3)


@click.command("export")
@click.argument("backup_id")
@click.argument("path", type=click.Path(path_type=Path))
@global_options
def export_cmd(backup_id: str, path: Path) -> None:
    """Write a backup out as plain standard files (readable without pgsafe)."""
    from pgsafe import api  # the operations (loaded by the command that runs)

    repo = open_repo()
    m = repo.resolve(backup_id)
    r = api.export(repo, api.ExportRequest(m.id, path))
    emit(vars(r), f"exported {r.id} to {r.path}:\n" + "\n".join(f"  {f}" for f in r.files))


COMMANDS: list[click.Command] = [dump_cmd, list_cmd, show_cmd, restore_cmd, verify_cmd, export_cmd]
