"""``pgsafe mistakes`` after a point-in-time recovery: the WAL read follows the timelines
that lead to the newest one.  A transaction of the abandoned branch of timeline 1 (after
the point the recovery stopped at) is not listed; those of timeline 1 before it and of
timeline 2 are, each with its timeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.mistakes.scan import MistakeRequest, find_mistakes
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, psql_exec, reachable_tmpdir, run_pgsafe

SETUP = """
CREATE TABLE kept (x int); INSERT INTO kept VALUES (1);
CREATE TABLE lost (x int); INSERT INTO lost VALUES (1), (2);
CREATE TABLE later (x int); INSERT INTO later VALUES (1), (2), (3);
"""


def _delete(ci: str, table: str) -> int:
    with psycopg.connect(ci) as conn:
        conn.execute(f"DELETE FROM {table}")
        row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        conn.commit()
    return int(str(row[0]))


def test_abandoned_branch_is_not_listed(state_home: Path) -> None:
    base = reachable_tmpdir("pgsafe-mis-tl-")
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    a = make_cluster(base, "a", archive_settings(repo, state_home))
    b: LocalCluster | None = None
    try:
        psql_exec(a.conninfo(), SETUP)
        r = run_pgsafe("--repo", str(repo_path), "backup", "-d", a.conninfo())
        assert r.returncode == 0, r.stderr
        kept = _delete(a.conninfo(), "kept")
        _delete(a.conninfo(), "lost")  # the branch the recovery leaves behind
        switch_and_wait(a.conninfo(), repo, timeout=60)
        a.stop()
        r = run_pgsafe("--repo", str(repo_path), "recover", "--pgdata", str(base / "b"),
                       "--xid", str(kept), "--start", "--promote", "--archive", "--json",
                       timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        b = LocalCluster(base / "b", port=int(json.loads(r.stdout)["port"]))
        later = _delete(b.conninfo(), "later")
        switch_and_wait(b.conninfo(), repo, timeout=60)
        report = find_mistakes(repo, MistakeRequest(conninfo=b.conninfo()))
        got = [(m.xid, m.timeline, m.changes[0].table, m.rows) for m in report.mistakes]
        assert got == [(kept, 1, "public.kept", 1), (later, 2, "public.later", 3)]
    finally:
        if b is not None:
            b.destroy()
        a.destroy()
        shutil.rmtree(base, ignore_errors=True)
