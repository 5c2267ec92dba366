"""What went wrong in a restore by psql or pg_restore: the error and the statement.

pg_restore prints ``pg_restore: error: ... ERROR:  ...`` then ``Command was: ...``;
psql run with ``--echo-errors`` prints ``psql:...: ERROR:  ...`` then the failed
statement.  A restore that fails is reported with both, and a hint, so that a backup
which cannot be restored says why (``verify`` shows it on a failing line).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pgsafe.errors import ToolFailed
from pgsafe.pg.pipe import run_fed

HINT = (
    "the backup does not restore as it is; a table subset needs the objects its "
    "definitions use (schemas, types, functions, parent tables)"
)


_ESSENTIAL = (
    "CREATE TABLE",
    "CREATE UNLOGGED TABLE",
    "CREATE FOREIGN TABLE",
    "CREATE MATERIALIZED VIEW",
    "CREATE SEQUENCE",
    "CREATE SCHEMA",
    "COPY ",
    "REFRESH MATERIALIZED VIEW",
    "SELECT PG_CATALOG.SETVAL",
)


@dataclass(frozen=True)
class StatementError:
    error: str
    statement: str

    @property
    def essential(self) -> bool:
        """Did a statement that creates or fills a relation fail?  (Otherwise it was a
        definition on top — trigger, policy, index, comment, grant — that needs an
        object outside a table subset.)  Unknown statements count as essential."""
        head = " ".join(self.statement.split()[:3]).upper()
        return not self.statement or head.startswith(_ESSENTIAL)

    def __str__(self) -> str:
        return f"{self.error} (statement: {self.statement})" if self.statement else self.error


def errors(stderr: str) -> list[StatementError]:
    """Each ERROR (or tool error) in ``stderr`` with the statement that caused it."""
    lines = stderr.splitlines()
    out: list[StatementError] = []
    for i, ln in enumerate(lines):
        if "ERROR:" in ln:
            msg = "ERROR: " + ln.split("ERROR:", 1)[1].strip()
        elif ": error:" in ln and "could not execute query" not in ln:
            msg = ln.split(": error:", 1)[1].strip()
        else:
            continue
        statement = ""
        for nxt in lines[i + 1 : i + 4]:
            s = nxt.strip()
            if s.startswith("Command was:"):
                statement = s.removeprefix("Command was:").strip()
                break
            skip = ("LINE ", "DETAIL:", "HINT:", "^", "psql:", "pg_restore:")
            if s and "ERROR:" not in s and not s.startswith(skip):
                statement = s
                break
        out.append(StatementError(msg, statement[:300]))
    return out


def run_checked(
    argv: list[str],
    env: dict[str, str],
    data: Iterable[bytes] | None,
    what: str,
    *,
    allow_errors: bool = False,
    hint: str = HINT,
) -> str:
    """Run a restore tool (stopping at its first error); return its stderr.  On an
    error raise :class:`ToolFailed` naming the failing statement, unless
    ``allow_errors``: then the caller reads the errors from the stderr returned."""
    _, err = run_fed(argv, env, data, what, allow_failure=True)
    found = errors(err)
    if found and not allow_errors:
        raise ToolFailed(f"{what} failed: {found[0]}", hint=hint)
    return err
