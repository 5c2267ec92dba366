"""Client tools newer than the server they load a dump into, where that is known to fail.

PostgreSQL promises that a dump loads into a server of its own major or newer; loading
into an older one is "not guaranteed" (pg_dump's documentation). pgsafe's client tools may
be newer than the server (``programs.find_program`` accepts a newer pg_dump, which reads
older servers), and for most pairs the load works. Where a newer major's tools are known
to write what an older server rejects, pgsafe refuses before anything runs (exit 2),
naming both majors and the package of the server's own client tools, instead of failing
half-way in pg_restore or psql:

- 17's pg_dump, pg_dumpall and pg_restore write ``SET transaction_timeout = 0`` into every
  script and every restore session; servers before 17 reject the setting.
- 15's pg_dump and pg_dumpall write ``CREATE DATABASE ... LOCALE_PROVIDER = ...`` when the
  database itself is created (``pg_restore --create``, a dump of every database); servers
  before 15 reject the option.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgsafe.errors import BadInput, PgsafeError
from pgsafe.pg.programs import find_program, package_for, program_version


@dataclass(frozen=True)
class Rejected:
    """What the tools of ``since`` and newer write that servers older than ``since`` reject."""

    since: int
    what: str
    creating_database_only: bool


KNOWN: tuple[Rejected, ...] = (
    Rejected(15, "CREATE DATABASE ... LOCALE_PROVIDER", creating_database_only=True),
    Rejected(17, "SET transaction_timeout", creating_database_only=False),
)


def rejected(tool_major: int, server_major: int, *, creates_database: bool) -> Rejected | None:
    """The known statement a server of ``server_major`` rejects in the output of tools of
    ``tool_major``, or None where the load is expected to work."""
    for r in KNOWN:
        if tool_major >= r.since > server_major and (
            creates_database or not r.creating_database_only
        ):
            return r
    return None


def check_loads(tool: str, path: str, server_major: int, *, creates_database: bool = False) -> None:
    """Refuse (exit 2) to load a dump with program ``tool`` at ``path`` into a server of
    ``server_major`` when its output is known not to load there."""
    tool_major = program_version(path)
    r = rejected(tool_major, server_major, creates_database=creates_database)
    if r is None:
        return
    raise BadInput(
        f"{tool} {tool_major} would load into a PostgreSQL {server_major} server, which "
        f"rejects its {r.what}: a dump loads into its own major or newer",
        hint=(
            f"install {package_for(tool, server_major)} (or list the folder of {tool} "
            f"{server_major} first in PGSAFE_PG_BINDIR), or restore into a PostgreSQL "
            f"{tool_major} or newer server"
        ),
    )


def loading_major(tool: str, server_major: int, *, creates_database: bool) -> tuple[int, str]:
    """The major of a throwaway server to load a dump of a ``server_major`` server into,
    and a note saying why when it is not ``server_major``: the major of the client tool
    that loads it, where ``server_major`` is known to reject that tool's output and that
    major's server programs are installed (a dump loads into its own major or newer)."""
    tool_major = program_version(find_program(tool, server_major))
    r = rejected(tool_major, server_major, creates_database=creates_database)
    if r is None:
        return server_major, ""
    try:
        find_program("initdb", tool_major)
    except PgsafeError:
        return server_major, ""  # the load is refused by check_loads, naming the fix
    return tool_major, (
        f"loaded into a PostgreSQL {tool_major} server: {tool} {tool_major}'s "
        f"{r.what} does not load into {server_major}"
    )
