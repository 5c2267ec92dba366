"""Checks before a throwaway cluster is recovered: the live server is the recorded one,
and the transaction is one the WAL scan lists as destructive."""

from __future__ import annotations

from typing import Any

import psycopg

from pgsafe.errors import BadInput
from pgsafe.mistakes.model import Mistake
from pgsafe.repo.repository import Repository
from pgsafe.wal import server_record


def check_server(repo: Repository, live: psycopg.Connection[Any]) -> None:
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


def known_mistake(repo: Repository, xid: int | None, database: str) -> Mistake | None:
    """The transaction as the WAL scan lists it.

    MISTAKES14: when ``pgsafe.mistakes.scan.find_mistakes`` is merged, look ``xid`` up
    here and refuse (exit 2, the candidates listed) one that is not destructive or not
    in the window before recovering anything.  Until then the throwaway cluster is the
    check: a transaction outside the window is refused when recovery ends before it,
    one that touched nothing when no row names it (:mod:`pgsafe.undo.touched`).
    """
    return None
