"""An archiving source for tests of physical backups, drills and recovery.

A real cluster whose ``archive_command`` pushes into a new repository (made as the
server's OS user would have it), in a folder the server's user can reach; removed
with its folder when the ``with`` block ends, whatever happened in it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, reachable_tmpdir, run_pgsafe


@dataclass
class Archiving:
    cluster: LocalCluster
    repo: Repository
    repo_path: Path
    base: Path

    @property
    def conninfo(self) -> str:
        return self.cluster.conninfo()

    def backup(self) -> str:
        """``pgsafe backup`` of the cluster into the repository; the new backup's id."""
        r = run_pgsafe("--repo", str(self.repo_path), "backup", "-d", self.conninfo, "--json")
        assert r.returncode == 0, r.stderr
        return str(json.loads(r.stdout)["id"])


@contextmanager
def archiving_cluster(prefix: str, state_home: Path) -> Iterator[Archiving]:
    """A cluster named ``src`` archiving into ``<tmp>/repo``; ``prefix`` names the folder."""
    base = reachable_tmpdir(prefix)
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    c = make_cluster(base, "src", archive_settings(repo, state_home))
    try:
        yield Archiving(c, repo, repo_path, base)
    finally:
        c.destroy()
        shutil.rmtree(base, ignore_errors=True)


def committed_xid(conninfo: str, sql: str) -> int:
    """Run ``sql`` in one transaction and commit it; its (top-level) xid."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql)
        row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        conn.commit()
    return int(str(row[0]))
