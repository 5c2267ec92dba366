"""pgsafe as a contender: its command line, run by this interpreter as ``python -m
pgsafe`` (wal-push goes through the runtime archive_command uses: see ``parts.walpush``)."""

from __future__ import annotations

import sys


def pgsafe_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgsafe", *args]
