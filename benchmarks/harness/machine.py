"""What the results say about the machine and the code measured."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from pgsafe import __version__ as PGSAFE_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _first(path: str, pattern: str) -> str:
    with contextlib.suppress(OSError):
        m = re.search(pattern, Path(path).read_text(), re.M)
        if m:
            return m.group(1).strip()
    return "?"


def tool_version(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def machine_info(base: Path, postgres: str) -> dict[str, Any]:
    """The machine, the versions of the tools and the code measured (``postgres``: the
    server program, as pgsafe's program discovery finds it)."""
    disk = subprocess.run(
        ["df", "-h", "--output=source,fstype,size,avail", str(base)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rota = "?"
    dev = disk.splitlines()[-1].split()[0] if disk.strip() else ""
    name = Path(dev).name
    with contextlib.suppress(OSError):
        rota = Path(f"/sys/block/{name}/queue/rotational").read_text().strip()
    git = tool_version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = tool_version(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return {
        "cpu_model": _first("/proc/cpuinfo", r"^model name\s*:\s*(.+)$"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(_first("/proc/meminfo", r"^MemTotal:\s*(\d+)")) / 2**20, 1),
        "disk": " ".join(disk.splitlines()[-1].split()) if disk.strip() else "?",
        "disk_rotational": {"0": False, "1": True}.get(rota),
        "kernel": platform.release(),
        "os": _first("/etc/os-release", r'^PRETTY_NAME="?([^"\n]+)'),
        "python": platform.python_version(),
        "postgresql": tool_version([postgres, "--version"]),
        "pgbackrest": tool_version(["pgbackrest", "version"]),
        "pgsafe": PGSAFE_VERSION,
        "git_commit": git,
        # the code measured is the work tree: uncommitted changes under src/ are listed
        "src_uncommitted": [ln[3:] for ln in (dirty or "").splitlines()],
    }
