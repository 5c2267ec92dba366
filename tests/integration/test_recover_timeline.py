"""Recovery across a timeline switch: recover, promote (new timeline, archiving on),
write more, then recover again to a time on the new timeline."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import (
    make_cluster,
    psql_exec,
    query,
    reachable_tmpdir,
    run_pgsafe,
    skip_without_tool,
)


def _recover(repo: Path, pgdata: Path, *args: str) -> tuple[dict[str, object], LocalCluster]:
    r = run_pgsafe("--repo", str(repo), "recover", "--pgdata", str(pgdata), "--start", "--json",
                   *args)  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    doc = json.loads(r.stdout)
    return doc, LocalCluster(pgdata, port=int(doc["port"]))


def _ids(c: LocalCluster) -> list[object]:
    return [r[0] for r in query(c.conninfo(), "SELECT id FROM t ORDER BY id")]


def test_recover_to_a_time_on_the_new_timeline(state_home: Path) -> None:
    skip_without_tool("pg_waldump", "recover --time")
    base = reachable_tmpdir("pgsafe-tli-")
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    a = make_cluster(base, "a", archive_settings(repo, state_home))
    clusters = [a]
    try:
        psql_exec(a.conninfo(), "CREATE TABLE t (id int, at timestamptz DEFAULT clock_timestamp())")
        assert run_pgsafe("--repo", str(repo_path), "backup", "-d", a.conninfo()).returncode == 0
        psql_exec(a.conninfo(), "INSERT INTO t (id) VALUES (1)")
        switch_and_wait(a.conninfo(), repo)
        a.stop()  # the old primary is gone; its copy becomes the new primary
        doc, b = _recover(repo_path, base / "b", "--latest", "--archive")
        clusters.append(b)
        assert doc["state"] == "promoted" and _ids(b) == [1]
        reached = doc["reached"]
        assert isinstance(reached, dict) and reached["timeline"] == 2
        psql_exec(b.conninfo(), "INSERT INTO t (id) VALUES (2)")
        time.sleep(0.3)
        t2 = str(query(b.conninfo(), "SELECT clock_timestamp()")[0][0])
        time.sleep(0.3)
        psql_exec(b.conninfo(), "INSERT INTO t (id) VALUES (3)")
        switch_and_wait(b.conninfo(), repo)
        info = json.loads(run_pgsafe("--repo", str(repo_path), "info", "--json").stdout)
        tl2 = next(t for t in info["timelines"] if t["timeline"] == 2)
        assert tl2["parent"]["timeline"] == 1 and tl2["gaps"] == []
        assert tl2["recoverable_to"] > t2.replace(" ", "T")[:19]
        doc, c = _recover(repo_path, base / "c", "--time", t2, "--promote")
        clusters.append(c)
        assert _ids(c) == [1, 2]
        assert isinstance(doc["plan"], dict) and doc["plan"]["timeline"] == 2
        reached = doc["reached"]
        assert isinstance(reached, dict) and reached["timeline"] == 3
    finally:
        for cl in clusters:
            cl.destroy()
        shutil.rmtree(base, ignore_errors=True)
