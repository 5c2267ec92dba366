"""Throwaway clusters: created for one restore test, removed afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster

FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "'1GB'",
    "shared_buffers": "'128MB'",
    "max_locks_per_transaction": "256",
}


def clusters_dir(home: Path) -> Path:
    d = home / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(home, os.stat(home).st_mode | 0o111)
        os.chmod(d, 0o755)
    runas.require_reachable(d, runas.server_user(), "pgsafe state folder (PGSAFE_HOME)")
    return d


@contextmanager
def throwaway(home: Path, major: int | None, prefix: str = "verify-") -> Iterator[LocalCluster]:
    """An initialised, started cluster of PostgreSQL ``major``; destroyed on exit."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=clusters_dir(home)))
    os.chmod(base, 0o755)
    cluster = LocalCluster(base / "data", major=major or 0, settings=dict(FAST_SETTINGS))
    try:
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
