"""Database-level properties of a single-database backup: what ``pg_dump --create`` adds.

A database carries, outside its objects: its encoding and locale, its owner, its
``ALTER DATABASE ... SET`` settings (and ``ALTER ROLE ... IN DATABASE ... SET``), its
comment and its privileges.  pg_dump writes them only with ``--create``, in a script
that creates the database under its own name — no use for ``restore --create -d
NEWNAME``.  So the dump keeps them beside the backup (object ``database``): pg_dump's
own statements for them (``-Fp --create --schema-only --exclude-schema '*'``, so the
quoting of list settings such as search_path is pg_dump's), and a restore with
``--create`` replays them for the new name, each entry on its own, after the data:
a setting such as ``default_transaction_read_only`` must not get in the restore's way.
Restoring into an existing database applies none, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgsafe.errors import ToolFailed
from pgsafe.logical.single_table import parse_script
from pgsafe.pg import process
from pgsafe.pg.connect import Connection
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env

_KEPT = ("DATABASE", "DATABASE PROPERTIES", "COMMENT", "ACL", "SECURITY LABEL")
_HEADS = (
    "CREATE DATABASE ",
    "ALTER DATABASE ",
    "ALTER ROLE ",
    "COMMENT ON DATABASE ",
    "SECURITY LABEL ",
    "GRANT ",
    "REVOKE ",
)
_WHAT = {
    "DATABASE": "owner",
    "DATABASE PROPERTIES": "settings",
    "COMMENT": "comment",
    "ACL": "privileges",
    "SECURITY LABEL": "security label",
}


@dataclass(frozen=True)
class Part:
    """One database-level entry: its kind (owner, settings...) and its statements."""

    what: str
    sql: str


def capture(conninfo: str, major: int, lock_timeout: str) -> bytes:
    """pg_dump's database-level entries of the database ``conninfo`` names."""
    clean, env = tool_env(conninfo)
    argv = [find_program("pg_dump", major), "--no-password", "-Fp", "--create", "--schema-only"]
    argv += ["--exclude-schema", "*", f"--lock-wait-timeout={lock_timeout}", "-d", clean or ""]
    done = process.capture(argv, env)
    if not done.exited.ok:
        err = done.exited.first_error()
        raise ToolFailed(f"pg_dump of the database's properties failed: {err}")
    out: list[str] = []
    for e in parse_script(done.stdout.decode()):
        if e.type in _KEPT and (e.type in ("DATABASE", "DATABASE PROPERTIES") or
                                e.name.startswith("DATABASE ")):  # fmt: skip
            out.append(f"-- Name: {e.name}; Type: {e.type}; Schema: {e.schema}; Owner: {e.owner}")
            out += [ln for ln in e.body.splitlines() if ln and not ln.startswith(("\\", "--"))]
    return ("\n".join(out) + "\n").encode()


def parts(script: str, new_name: str) -> tuple[str | None, list[Part]]:
    """(the CREATE DATABASE statement, the other entries), renamed to ``new_name``."""
    entries = parse_script(script)
    old = None
    for e in entries:
        m = re.search(r"^CREATE DATABASE (.+?) WITH ", e.body, re.M)
        if e.type == "DATABASE" and m:
            old = m.group(1)
    if old is None:
        return None, []
    new = '"' + new_name.replace('"', '""') + '"'
    pattern = re.compile(r"\bDATABASE " + re.escape(old) + r"(?=[ ;])")
    create: str | None = None
    out: list[Part] = []
    for e in entries:
        lines = []
        for ln in e.body.splitlines():
            if ln.startswith(("SET ", "SELECT pg_catalog.set_config")):
                continue
            if ln.startswith(_HEADS):
                ln = pattern.sub(lambda _m: "DATABASE " + new, ln, count=1)
            lines.append(ln)
        body = "\n".join(lines).strip()
        if e.type == "DATABASE":
            stmts = body.split(";\n")
            create = stmts[0].rstrip(";") if stmts[0].startswith("CREATE DATABASE") else None
            rest = ";\n".join(stmts[1:]).strip()
            if rest:
                out.append(Part("owner", rest))
        elif body:
            out.append(Part(_WHAT.get(e.type, e.type.lower()), body))
    return create, out


def apply(conn: Connection, todo: list[Part]) -> list[str]:
    """Apply each part on its own (autocommit); return what could not be applied."""
    failed = []
    for p in todo:
        try:
            with conn.transaction():
                conn.execute(sql.SQL(p.sql))
        except psycopg.Error as exc:
            err = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            failed.append(f"database {p.what} not applied: {err}")
    return failed


def summary(todo: list[Part]) -> str:
    return ", ".join(dict.fromkeys(p.what for p in todo)) or "none"
