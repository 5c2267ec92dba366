"""PostgreSQL's own tools as contenders: pg_basebackup, pg_dump, pg_restore (found by
pgsafe's program discovery, through the cluster's ``program``)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness.db import conn_args
from pgsafe.cluster.local import LocalCluster


def basebackup_tar(c: LocalCluster, dest: Path, *flags: str) -> list[str]:
    """``pg_basebackup -F t -c fast`` of ``c`` into ``dest``."""
    return [c.program("pg_basebackup"), *conn_args(c)[:-2], "-D", str(dest), "-F", "t",
            "-c", "fast", *flags]  # fmt: skip


def dump_custom(c: LocalCluster, out: Path) -> list[str]:
    """``pg_dump -Fc`` of the bench database into ``out``."""
    return [c.program("pg_dump"), *conn_args(c), "-Fc", "-f", str(out)]
