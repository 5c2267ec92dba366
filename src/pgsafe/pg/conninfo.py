"""Connection options following libpq conventions.

``-d`` may be a database name or a full connection string / URI; ``-h -p -U`` add to
it; everything else (PG* variables, ~/.pgpass, service files) is libpq's own doing.

A connection string may hold a password, so no text made from one is shown as it is:
:func:`malformed` says *where* libpq found a malformed string (never what it holds),
:func:`describe` prints host, port, user and database only, and
:func:`pgsafe.pg.redact.redact` blanks passwords in any text (the CLI's logging uses it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgsafe.errors import BadInput
from pgsafe.pg.redact import redact


@dataclass(frozen=True)
class ConnOptions:
    """What the user said about where PostgreSQL is; None means libpq's default."""

    dbname: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string; ``dbname`` overrides the database."""
        base = self.dbname or ""
        try:
            kwargs: dict[str, str | int] = {}
            if self.host:
                kwargs["host"] = self.host
            if self.port:
                kwargs["port"] = self.port
            if self.user:
                kwargs["user"] = self.user
            if dbname is not None:
                kwargs["dbname"] = dbname
            if base and not _looks_like_conninfo(base):
                kwargs.setdefault("dbname", base)
                base = ""
            return make_conninfo(base, **kwargs)
        except Exception as exc:  # psycopg.ProgrammingError on a malformed string
            raise BadInput(
                malformed(self.dbname or "", str(exc)),
                hint="use a database name, key=value pairs or a postgresql:// URI",
            ) from None


def _looks_like_conninfo(s: str) -> bool:
    return "=" in s or s.startswith(("postgresql://", "postgres://"))


def split_password(conninfo: str) -> tuple[str, str | None]:
    """Remove the password from a connection string, returning (clean, password)."""
    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return conninfo, None
    password = params.pop("password", None)
    if password is None:
        return conninfo, None
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), str(password)


def describe(conninfo: str) -> str:
    """A printable description of a connection string, without any password."""
    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "(unparsable connection string)"
    params.pop("password", None)
    parts = [f"{k}={params[k]}" for k in ("host", "port", "user", "dbname") if params.get(k)]
    return " ".join(parts) or "(libpq defaults)"


def dbname_of(conninfo: str) -> str | None:
    try:
        v = conninfo_to_dict(conninfo).get("dbname")
    except Exception:
        return None
    return str(v) if v else None


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def malformed(conninfo: str, libpq_message: str) -> str:
    """libpq's complaint about a malformed connection string, without its contents.

    libpq quotes what it could not parse (the whole URI, or the word after a
    password); each quoted piece of the user's string becomes its position."""
    lines = libpq_message.strip().splitlines()
    text = lines[0] if lines else "cannot be parsed"

    def place(m: re.Match[str]) -> str:
        frag = m.group(1)
        if len(frag) <= 2 and not any(c.isalnum() for c in frag):
            return m.group(0)  # a separator such as "=" or "]": that is the 'where'
        if frag == conninfo.strip():
            return "\x00"  # the whole string echoed: dropped below
        pos = conninfo.find(frag)
        return f"the text at character {pos + 1}" if pos >= 0 else "(a part of it)"

    text = _QUOTED.sub(place, text)
    text = re.sub(r"\s*:?\s*\x00", "", text).strip()
    return "malformed connection string: " + redact(text)
