"""Checks before a throwaway cluster is recovered: the live server is the recorded one,
and the transaction is one the WAL scan (:mod:`pgsafe.mistakes.scan`) lists as
destructive in the database."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from pgsafe.errors import BadInput
from pgsafe.logical.tables import Table, match
from pgsafe.mistakes.model import Mistake, MistakeRequest
from pgsafe.mistakes.scan import find_mistakes
from pgsafe.pg.connect import Connection
from pgsafe.repo.repository import Repository
from pgsafe.wal import server_record


def check_server(repo: Repository, live: Connection) -> None:
    """BadInput unless the live server is the one the repository archives."""
    record = server_record.load(repo)
    try:
        row = live.execute(
            "SELECT system_identifier::text FROM pg_catalog.pg_control_system()"
        ).fetchone()
    except psycopg.Error as exc:
        raise BadInput(
            f"cannot read the live server's system identifier: {str(exc).strip().splitlines()[0]}",
            hint="connect as a superuser (or a member of pg_monitor)",
        ) from None
    ident = str(row[0]) if row else None
    if record is not None and ident != record.system_identifier:
        raise BadInput(
            f"the live server (system identifier {ident}) is not the server "
            f"{repo.server!r} of this repository ({record.system_identifier})",
            hint="connect with -d/-h/-p to the server whose backups these are, or choose "
            "its repository (--repo, --server)",
        )


def _describe(m: Mistake) -> str:
    tables = ", ".join(sorted({c.table or f"relfilenode {c.relfilenode}" for c in m.changes}))
    kinds = "/".join(sorted({str(c.kind) for c in m.changes}))
    return f"{m.xid} ({kinds} {tables} at {m.commit_time.isoformat(sep=' ')})"


def known_mistake(
    repo: Repository, xid: int | None, database: str, conninfo: str
) -> Mistake | None:
    """Transaction ``xid`` as the WAL scan (``pgsafe mistakes``) lists it, before any
    throwaway cluster is recovered (also when ``xid`` is one of its subtransactions,
    as pg_waldump shows a DELETE in a savepoint); BadInput (exit 2) listing the destructive
    transactions of the window when it is not one of them.  None for a time or
    restore-point target."""
    if xid is None:
        return None
    report = find_mistakes(repo, MistakeRequest(database=database, conninfo=conninfo))
    for m in report.mistakes:
        if xid in (m.xid, *m.subxacts):
            return m
    start = report.start_time.isoformat(sep=" ") if report.start_time else report.start_lsn
    end = report.end_time.isoformat(sep=" ") if report.end_time else report.end_lsn
    listed = "; ".join(_describe(m) for m in report.mistakes[-8:]) or "none"
    raise BadInput(
        f"transaction {xid} is not a destructive transaction of database {database} in the "
        f"window of WAL read ({start} .. {end})",
        hint=f"the destructive transactions there: {listed}",
    )


def check_tables(mistake: Mistake | None, names: Sequence[str], what: str) -> None:
    """BadInput when ``-t`` names a table the scanned transaction did not touch (a
    partition's parent counts: the WAL names the partitions)."""
    if mistake is None or any(c.table is None for c in mistake.changes):
        return
    tables = [Table(*_split(str(c.table))) for c in mistake.changes]
    for name in names:
        # a partitioned table's partitions are usually named after it (events_2024);
        # the exact check, through the catalogs, follows on the throwaway cluster
        if match(name, tables) or any(t.name.startswith(name.split(".")[-1]) for t in tables):
            continue
        listed = ", ".join(sorted({t.qualified for t in tables}))
        raise BadInput(
            f"{what} did not touch table {name!r}", hint=f"the tables it touched: {listed}"
        )


def _split(qualified: str) -> tuple[str, str]:
    schema, _, name = qualified.partition(".")
    return (schema, name) if name else ("public", schema)
