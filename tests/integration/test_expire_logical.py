"""expire on real logical backups: the dry run names exactly what expire removes."""

from __future__ import annotations

import json
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, run_pgsafe


def test_dry_run_then_expire_and_keep(repo: Path, pg: LocalCluster) -> None:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS retained")
    psql_exec(pg.conninfo(), "CREATE DATABASE retained")
    ids = []
    for day in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"):
        r = run_pgsafe(
            "--repo",
            str(repo),
            "dump",
            "-d",
            pg.conninfo("retained"),
            "--json",
            env={"PGSAFE_FAKE_NOW": f"{day}T10:00:00+00:00"},
        )
        assert r.returncode == 0, r.stderr
        ids.append(json.loads(r.stdout)["id"])
    pin = run_pgsafe("--repo", str(repo), "keep", ids[0])
    assert pin.returncode == 0
    env = {"PGSAFE_FAKE_NOW": "2024-01-06T10:00:00+00:00"}
    refused = run_pgsafe("--repo", str(repo), "expire", env=env)
    assert refused.returncode == 2 and "no retention policy" in refused.stderr
    dry = run_pgsafe(
        "--repo", str(repo), "expire", "--keep-last", "2", "--dry-run", "--json", env=env
    )
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)["remove"]
    assert planned == [ids[1], ids[2]]
    listed = json.loads(run_pgsafe("--repo", str(repo), "list", "--json").stdout)["backups"]
    assert len(listed) == 5  # the dry run changed nothing
    real = run_pgsafe("--repo", str(repo), "expire", "--keep-last", "2", "--json", env=env)
    assert json.loads(real.stdout)["remove"] == planned
    left = [
        b["id"]
        for b in json.loads(run_pgsafe("--repo", str(repo), "list", "--json").stdout)["backups"]
    ]
    assert left == [ids[0], ids[3], ids[4]]
    assert not any((repo / "main" / "backups" / i).exists() for i in planned)
    # released, the pinned one goes too; the two newest stay
    run_pgsafe("--repo", str(repo), "keep", "--release", ids[0])
    run_pgsafe("--repo", str(repo), "expire", "--keep-days", "1", env=env)
    left = [
        b["id"]
        for b in json.loads(run_pgsafe("--repo", str(repo), "list", "--json").stdout)["backups"]
    ]
    assert left == [ids[4]]  # the newest valid backup always stays
