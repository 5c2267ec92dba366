"""The PostgreSQL programs pgsafe uses for one server's major, found or missing.

``check`` and ``info`` show them: each tool's path and version, or the package that
would provide it.  A client tool of a newer major serves an older server; the tools of
``EXACT_MAJOR`` (pg_waldump, pg_ctl, ...) must be of the server's own major.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgsafe.errors import PgsafeError
from pgsafe.pg.programs import EXACT_MAJOR, find_program, missing_hint, program_version

# what pgsafe runs, and what for (shown beside a missing tool)
TOOLS: tuple[tuple[str, str], ...] = (
    ("pg_basebackup", "physical backups"),
    ("pg_dump", "logical backups"),
    ("pg_restore", "logical restores"),
    ("psql", "logical restores"),
    ("pg_verifybackup", "proving recovered files"),
    ("pg_waldump", "the recoverable window and recover --time"),
    ("pg_ctl", "recover --start, drills"),
    ("postgres", "recover --start, drills"),
)


@dataclass(frozen=True)
class ToolStatus:
    """One program for a server of ``major``: where it is, or how to get it."""

    name: str
    major: int
    used_for: str
    path: str | None
    version: int | None  # the program's own major (newer than the server's for clients)
    fix: str | None  # set when missing

    @property
    def found(self) -> bool:
        return self.path is not None

    @property
    def detail(self) -> str:
        if self.path is None:
            rule = "its own major" if self.name in EXACT_MAJOR else f"{self.major} or newer"
            return f"missing ({rule}; needed for {self.used_for})"
        return f"{self.path} (PostgreSQL {self.version})"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "major": self.major,
            "path": self.path,
            "version": self.version,
            "used_for": self.used_for,
            "fix": self.fix,
        }


def tools_for(major: int) -> list[ToolStatus]:
    """Each program pgsafe uses, as found for a server of ``major``."""
    out = []
    for name, used_for in TOOLS:
        try:
            path = find_program(name, major)
            out.append(ToolStatus(name, major, used_for, path, program_version(path), None))
        except PgsafeError:
            out.append(ToolStatus(name, major, used_for, None, None, missing_hint(name, major)))
    return out
