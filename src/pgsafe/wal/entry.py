"""Lean entry point for ``wal-push`` / ``wal-get`` (no click, rich or psycopg)."""

from __future__ import annotations

import sys


def main(args: list[str]) -> int:
    print("error: wal-push / wal-get are not implemented yet", file=sys.stderr)
    return 1
