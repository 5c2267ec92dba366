"""Open psycopg connections, translating failures into pgsafe errors.

No error made here holds a password: the server's or libpq's text passes through
:func:`pgsafe.pg.redact.redact`, and a malformed string is described by position."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from pgsafe.errors import ConnectionFailed
from pgsafe.pg.conninfo import describe, malformed
from pgsafe.pg.redact import redact

Connection = psycopg.Connection[TupleRow]
"""A connection as :func:`connect` opens it: rows are tuples."""


def connect(
    conninfo: str,
    *,
    autocommit: bool = True,
    connect_timeout: int = 10,
    dbname: str | None = None,
) -> Connection:
    """Connect, or raise :class:`ConnectionFailed` (exit 2) with a hint; ``dbname``
    overrides the database ``conninfo`` names."""
    if dbname is not None:
        conninfo = make_conninfo(conninfo, dbname=dbname)
    try:
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name="pgsafe",
        )
    except psycopg.OperationalError as exc:
        raise _translate(exc, conninfo) from None
    except psycopg.ProgrammingError as exc:
        raise ConnectionFailed(
            malformed(conninfo, str(exc)),
            hint="use a database name, key=value pairs or a postgresql:// URI",
        ) from None


def _translate(exc: psycopg.OperationalError, conninfo: str) -> ConnectionFailed:
    text = redact(str(exc).strip())
    detail = text.splitlines()[-1] if text else "unknown error"
    for line in text.splitlines():
        if "FATAL" in line or "failed" in line or "refused" in line:
            detail = line.strip()
            break
    where = describe(conninfo)
    if "password authentication failed" in text or "no password supplied" in text:
        return ConnectionFailed(
            f"PostgreSQL refused the credentials ({where}): {detail}",
            hint="check the user name and password "
            "(PGPASSWORD, ~/.pgpass or the connection string)",
        )
    if "does not exist" in text and "database" in text:
        return ConnectionFailed(
            f"cannot connect ({where}): {detail}",
            hint="check the database name given with -d",
        )
    return ConnectionFailed(
        f"cannot connect to PostgreSQL ({where}): {detail}",
        hint="is the server running and reachable? check -h/-p or PGHOST/PGPORT",
    )


def server_major(conn: Connection) -> int:
    return int(conn.info.server_version) // 10000
