"""Undo a mistake in the live database: undo, restore-table."""

from __future__ import annotations

import click

from pgsafe import jsonshape
from pgsafe.cli.common import conn, conn_options, emit, global_options, open_repo
from pgsafe.errors import BadInput
from pgsafe.recovery.targets import target_request
from pgsafe.undo.model import OnConflict, RestoreTableRequest, UndoRequest, UndoResult
from pgsafe.undo.run import restore_table, undo


def _finish(r: UndoResult) -> None:
    emit(jsonshape.undo(r), r.text, quiet_text="refused" if r.refused else "ok")
    if r.refused:
        click.echo(
            "HINT: choose with --on-conflict skip (leave those rows as they are) or "
            "--on-conflict overwrite (the rows as they were before win)",
            err=True,
        )
        raise click.exceptions.Exit(2)


@click.command("undo")
@click.argument("xid", required=False)
@click.option("--time", "target_time", default=None, help="undo everything after this time")
@click.option(
    "--name", "target_name", default=None, help="undo everything after this restore point"
)
@click.option("-t", "--table", "tables", multiple=True, help="only this table (repeatable)")
@click.option(
    "--on-conflict",
    type=click.Choice([p.value for p in OnConflict]),
    default=OnConflict.REFUSE.value,
    show_default=True,
    help="rows a later transaction changed again: refuse, skip them, or overwrite them",
)
@click.option("--as", "as_name", default=None, help="bring the table back whole under this name")
@click.option("--dry-run", is_flag=True, help="print the plan, change nothing")
@click.option("--fire-triggers", is_flag=True,
              help="let the tables' triggers run on the rows written back")  # fmt: skip
@conn_options
@global_options
def undo_cmd(
    xid: str | None,
    target_time: str | None,
    target_name: str | None,
    tables: tuple[str, ...],
    on_conflict: str,
    as_name: str | None,
    dry_run: bool,
    fire_triggers: bool,
    dbname: str | None,
    host: str | None,
    port: int | None,
    username: str | None,
) -> None:
    """Bring back, into the live database, what transaction XID deleted, changed,
    truncated or dropped (or everything since --time / --name), in one transaction."""
    given = [v for v in (xid, target_time, target_name) if v is not None]
    if len(given) != 1:
        raise BadInput(
            "give a transaction id, --time or --name (exactly one)",
            hint="`pgsafe mistakes` lists the destructive transactions and their ids",
        )
    target = target_request(xid=xid, time=target_time, name=target_name)
    req = UndoRequest(
        target=target,
        conn=conn(dbname, host, port, username),
        tables=tables,
        on_conflict=OnConflict(on_conflict),
        as_name=as_name,
        dry_run=dry_run,
        fire_triggers=fire_triggers,
    )
    _finish(undo(open_repo(), req))


@click.command("restore-table")
@click.option("-t", "--table", "table", required=True, help="the table to bring back")
@click.option("--as", "as_name", required=True, help="its name in the live database")
@click.option("--time", "target_time", default=None, help="as of this time")
@click.option("--xid", default=None, help="as of this transaction (included)")
@click.option("--lsn", default=None, help="as of this LSN")
@click.option("--name", "target_name", default=None, help="as of this restore point")
@click.option("--dry-run", is_flag=True, help="print the plan, change nothing")
@conn_options
@global_options
def restore_table_cmd(
    table: str,
    as_name: str,
    target_time: str | None,
    xid: str | None,
    lsn: str | None,
    target_name: str | None,
    dry_run: bool,
    dbname: str | None,
    host: str | None,
    port: int | None,
    username: str | None,
) -> None:
    """A table as of any moment of the recoverable window, into the live database under
    a new name (the cluster is not rolled back)."""
    target = target_request(time=target_time, xid=xid, lsn=lsn, name=target_name)
    req = RestoreTableRequest(
        table=table,
        as_name=as_name,
        target=target,
        conn=conn(dbname, host, port, username),
        dry_run=dry_run,
    )
    _finish(restore_table(open_repo(), req))


COMMANDS: list[click.Command] = [undo_cmd, restore_table_cmd]
