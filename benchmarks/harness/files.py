"""Sizes of what a contender wrote, and fresh folders owned by the right OS user."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from pgsafe.cluster import runas


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def data_bytes(datadir: Path) -> int:
    """A data directory's size without pg_wal (whose size is max_wal_size's business,
    not the data's: a base backup takes only the WAL of its own start and stop)."""
    return tree_bytes(datadir) - tree_bytes(datadir / "pg_wal")


def fresh_dir(path: Path, user: runas.OsUser | None, mode: int = 0o755) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=mode)
    os.chmod(path, mode)
    runas.chown(path, user)
    return path
