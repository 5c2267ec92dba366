"""``pgsafe mistakes``: the destructive transactions in the WAL, each with its undo."""

from __future__ import annotations

import shlex
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from pgsafe import api, jsonshape
from pgsafe.cli.common import (
    _META,
    conn,
    conn_options,
    emit,
    global_options,
    info,
    open_repo,
    table,
)
from pgsafe.mistakes.model import ChangeKind, Mistake
from pgsafe.mistakes.scan import MistakeReport, MistakeRequest
from pgsafe.pg.conninfo import ConnOptions, dbname_of, split_password
from pgsafe.repo.repository import Repository

KINDS = [k.value for k in ChangeKind]
DEFAULT_LIMIT = 100


def _server_zone(repo: Repository) -> tzinfo:
    """The zone a time without one is read in: the server's, as recorded with the newest
    base backup; this machine's when none says."""
    newest = repo.latest("physical")
    name = newest.physical.timezone if newest is not None else None
    if isinstance(name, str) and name.replace("/", "").replace("_", "").isalnum():
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or UTC


def _time(text: str | None, zone: tzinfo) -> datetime | None:
    from pgsafe.recovery.targets import parse_time

    return parse_time(text, zone) if text is not None else None


def _undo_prefix(opts: ConnOptions) -> tuple[list[str], list[str]]:
    """The global flags the user gave (before ``undo``) and the connection flags."""
    given = click.get_current_context().meta.get(_META, {})
    front = ["pgsafe"]
    for flag in ("config", "repo", "server"):
        if given.get(flag):
            front += [f"--{flag}", str(given[flag])]
    back = []
    if opts.host:
        back += ["-h", opts.host]
    if opts.port:
        back += ["-p", str(opts.port)]
    if opts.user:
        back += ["-U", opts.user]
    return front, back


def _undo(m: Mistake, front: list[str], back: list[str], opts: ConnOptions) -> str:
    target = ["-d", m.database] if m.database else []
    if (opts.dbname and "=" in opts.dbname) or (opts.dbname or "").startswith("postgres"):
        clean, _ = split_password(ConnOptions(dbname=opts.dbname).conninfo(m.database))
        target = ["-d", clean]
    return shlex.join([*front, "undo", str(m.xid), *target, *back])


HEADER = ["commit time (UTC)", "xid", "lsn", "database", "table", "kind", "rows", "undo"]


def _rows(mistakes: tuple[Mistake, ...]) -> list[list[str]]:
    rows = []
    for m in mistakes:
        for i, c in enumerate(m.changes):
            first = i == 0
            rows.append([
                m.commit_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if first else "",
                str(m.xid) if first else "", m.lsn if first else "",
                (m.database or f"oid {m.database_oid}") if first else "",
                c.table or f"(relfilenode {c.relfilenode})", str(c.kind),
                str(c.rows) if c.kind in (ChangeKind.DELETE, ChangeKind.UPDATE) else "-",
                m.undo if first else "",
            ])  # fmt: skip
    return rows


def _text(r: MistakeReport) -> str:
    start = r.start_time.isoformat(sep=" ") if r.start_time else r.start_lsn
    head = (f"{len(r.mistakes)} destructive transaction(s) from {start}"
            f" ({r.segments} archived + {r.live_segments} live WAL segments read)")  # fmt: skip
    lines = [head]
    if r.mistakes:
        lines.append(table(HEADER, _rows(r.mistakes)))
    if r.omitted:
        lines.append(f"{r.omitted} older one(s) not shown: narrow with --since, -t, --kind,"
                     " --min-rows, or raise --limit")  # fmt: skip
    if r.largest_omitted:
        lines.append("the largest of them (a TRUNCATE or DROP first, then by rows):")
        lines.append(table(HEADER, _rows(r.largest_omitted)))
    return "\n".join(lines)


def _full_commands(r: MistakeReport, full: tuple[Mistake, ...]) -> tuple[str, ...]:
    """The notes, with each undo command in them given in full, as the table gives it."""
    out = []
    for note in r.notes:
        for short, long in zip(r.mistakes, full, strict=True):
            note = note.replace(f"`{short.undo} ", f"`{long.undo} ")
        out.append(note)
    return tuple(out)


@click.command("mistakes")
@click.option("--since", help="from this time (ISO 8601; default: the newest base backup)")
@click.option("--until", help="up to this time (ISO 8601)")
@click.option("-t", "--table", "table_name", help="only this table (schema.name or name)")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="only this kind")
@click.option(
    "--min-rows", type=click.IntRange(0), default=0, help="DELETE/UPDATE of N rows or more"
)
@click.option("--limit", type=click.IntRange(1), default=DEFAULT_LIMIT, show_default=True,
              help="show the newest N")  # fmt: skip
@click.option("--name-dropped", is_flag=True,
              help="name tables no catalog map knows (one throwaway recovery each)")  # fmt: skip
@conn_options
@global_options
def mistakes_cmd(since: str | None, until: str | None, table_name: str | None,
                 kinds: tuple[str, ...], min_rows: int, limit: int, name_dropped: bool,
                 dbname: str | None,
                 host: str | None, port: int | None, username: str | None) -> None:  # fmt: skip
    """Destructive transactions in the WAL (DELETE, UPDATE, TRUNCATE, DROP), each with the
    command that undoes it.  -d names the database (and the live server to ask)."""
    opts = conn(dbname, host, port, username)
    repo = open_repo()
    zone = _server_zone(repo)
    conninfo = opts.conninfo()
    request = MistakeRequest(
        since=_time(since, zone), until=_time(until, zone),
        database=dbname_of(conninfo) if opts.dbname else None, table=table_name,
        kinds=frozenset(ChangeKind(k) for k in kinds), min_rows=min_rows,
        conninfo=conninfo, live_optional=True, limit=limit, name_dropped=name_dropped,
    )  # fmt: skip
    report = api.mistakes(repo, request)
    front, back = _undo_prefix(opts)
    full = tuple(replace(m, undo=_undo(m, front, back, opts)) for m in report.mistakes)
    largest = tuple(replace(m, undo=_undo(m, front, back, opts)) for m in report.largest_omitted)
    report = replace(report, mistakes=full, notes=_full_commands(report, full),
                     largest_omitted=largest)  # fmt: skip
    for note in report.notes:
        info(f"note: {note}")
    emit(jsonshape.mistakes(report), lambda: _text(report))


COMMANDS: list[click.Command] = [mistakes_cmd]
