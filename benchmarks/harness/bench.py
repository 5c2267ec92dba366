"""The bench's state: its options, its scratch folder and OS user, the clusters it
started (destroyed at the end), pgBackRest when it is there, and the results document;
with the helpers every part needs (a cluster, a pgbench database, a repository)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.repo.repository import Repository

from .constants import DB, RANDOM_ROWS_PER_SCALE, RANDOM_TABLE
from .db import conn_args, execute, psycopg_conn
from .measure import log

if TYPE_CHECKING:
    from benchmarks.contenders.pgbackrest import PgBackRest


@dataclass
class Bench:
    args: argparse.Namespace
    base: Path
    user: runas.OsUser | None
    notes: list[str] = field(default_factory=list)
    clusters: list[LocalCluster] = field(default_factory=list)
    pgbr: PgBackRest | None = None
    main: LocalCluster | None = None
    doc: dict[str, Any] = field(default_factory=dict)
    t_start: float = field(default_factory=time.monotonic)

    def new_repo(self, path: Path) -> Repository:
        shutil.rmtree(path, ignore_errors=True)
        repo = Repository.open(str(path), "main", create=True, owner=repository_owner())
        runas.chown_tree(path, self.user)
        return repo

    def cluster(self, name: str, extra: dict[str, str] | None = None) -> LocalCluster:
        c = LocalCluster(self.base / name, settings={"max_wal_size": "'1GB'", **(extra or {})})
        self.clusters.append(c)
        c.initdb()
        c.start()
        return c

    def pgbench_init(self, c: LocalCluster, scale: int) -> None:
        log(f"pgbench -i -s {scale} (server-side generation)")
        execute(c, f"CREATE DATABASE {DB}")
        argv = [c.program("pgbench"), *conn_args(c)[:-2], "-i", "-I", "dtGvp", "-s", str(scale)]
        subprocess.run([*argv, DB], check=True, capture_output=True)
        if self.args.data == "random":
            rows = RANDOM_ROWS_PER_SCALE * scale
            log(f"random data: {rows} rows of random bytea and text")
            execute(c, RANDOM_TABLE.format(rows=rows), DB)
            with psycopg_conn(c, DB) as conn:
                counted = conn.execute("SELECT count(*) FROM bench_random").fetchone()[0]
            self.doc.setdefault("random_rows", {})[str(scale)] = counted
        execute(c, "CHECKPOINT")

    def data_factor(self) -> float:
        """Data directory size relative to pgbench alone, for the free-space checks."""
        return 1.5 if self.args.data == "random" else 1.0

    def stop_leftover(self, pgdata: Path) -> None:
        if (pgdata / "postmaster.pid").exists():
            LocalCluster(pgdata, user=self.user).destroy()
        shutil.rmtree(pgdata, ignore_errors=True)
