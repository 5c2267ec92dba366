"""Entry point.  ``wal-push`` and ``wal-get`` take a lean path that imports neither
click, rich nor psycopg: PostgreSQL starts them once per WAL segment."""

from __future__ import annotations

import sys

LEAN_COMMANDS = frozenset({"wal-push", "wal-get"})
_VALUE_OPTIONS = frozenset({"--repo", "--server", "--config"})


def command_name(args: list[str]) -> str | None:
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in _VALUE_OPTIONS:
            skip = True
            continue
        if a.startswith("-"):
            continue
        return a
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if command_name(args) in LEAN_COMMANDS:
        from pgsafe.wal.entry import main as lean_main

        return lean_main(args)
    from pgsafe.cli.app import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
