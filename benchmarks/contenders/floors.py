"""The floors: what the hardware and the operating system cost before any tool's work
(reading a data directory, extracting a tar, copying a file, starting Python)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from benchmarks.harness.measure import shell


def tar_read(datadir: Path) -> list[str]:
    """Read every file of a data directory (piped: GNU tar does not read the files when it
    writes to /dev/null itself)."""
    return shell(f"tar cf - -C {shlex.quote(str(datadir))} . | cat > /dev/null")


def tar_extract(tar: Path, dest: Path) -> list[str]:
    return ["tar", "xf", str(tar), "-C", str(dest)]


def copy(src: Path, dest: Path) -> list[str]:
    return ["cp", str(src), str(dest)]


def python3() -> str:
    """The interpreter of the ``python3 -c pass`` floor: the system's, as archive_command's."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def python_start() -> list[str]:
    return [python3(), "-c", "pass"]
