"""status goes OK -> WARN -> FAIL as the test's clock passes the thresholds; metrics
parse with prometheus_client's own parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, run_pgsafe


def status(repo: Path, cfg: Path, now: str) -> tuple[int, dict[str, Any]]:
    r = run_pgsafe(
        "--repo", str(repo), "--config", str(cfg), "status", "--json", env={"PGSAFE_FAKE_NOW": now}
    )
    return r.returncode, json.loads(r.stdout)


def test_status_levels_follow_the_clock(repo: Path, pg: LocalCluster, tmp_path: Path) -> None:
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text('max_backup_age = "26h"\nmax_unproven_age = "8d"\n')
    empty_rc, _ = status(repo, cfg, "2024-05-01T10:00:00+00:00")
    assert empty_rc != 0  # no repository yet is an error, not OK
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS watched")
    psql_exec(pg.conninfo(), "CREATE DATABASE watched")
    d = run_pgsafe(
        "--repo",
        str(repo),
        "dump",
        "-d",
        pg.conninfo("watched"),
        "--json",
        env={"PGSAFE_FAKE_NOW": "2024-05-01T10:00:00+00:00"},
    )
    backup_id = json.loads(d.stdout)["id"]
    rc, doc = status(repo, cfg, "2024-05-01T12:00:00+00:00")
    # a backup never verified is not proven yet
    assert rc == 1 and doc["status"] == "WARN"
    v = run_pgsafe(
        "--repo",
        str(repo),
        "verify",
        backup_id,
        env={"PGSAFE_FAKE_NOW": "2024-05-01T11:00:00+00:00"},
    )
    assert v.returncode == 0, v.stdout
    rc, doc = status(repo, cfg, "2024-05-01T12:00:00+00:00")
    assert (rc, doc["status"]) == (0, "OK"), doc
    rc, doc = status(repo, cfg, "2024-05-02T13:00:00+00:00")  # 27 h after the backup
    assert (rc, doc["status"]) == (1, "WARN")
    assert [i["name"] for i in doc["items"] if i["level"] == "WARN"] == ["logical backups"]
    rc, doc = status(repo, cfg, "2024-05-03T15:00:00+00:00")  # 53 h: over twice the limit
    assert (rc, doc["status"]) == (1, "FAIL")
    text = run_pgsafe(
        "--repo",
        str(repo),
        "--config",
        str(cfg),
        "status",
        env={"PGSAFE_FAKE_NOW": "2024-05-03T15:00:00+00:00"},
    )
    assert "FAIL" in text.stdout and "logical backups" in text.stdout

    m = run_pgsafe(
        "--repo", str(repo), "metrics", env={"PGSAFE_FAKE_NOW": "2024-05-01T12:00:00+00:00"}
    )
    assert m.returncode == 0, m.stderr
    samples = {
        (s.name, s.labels.get("kind")): s.value
        for fam in text_string_to_metric_families(m.stdout)
        for s in fam.samples
    }
    assert samples[("pgsafe_up", None)] == 1
    assert samples[("pgsafe_backups", "logical")] == 1
    assert samples[("pgsafe_backup_age_seconds", "logical")] == 7200
    assert samples[("pgsafe_proof_last_ok", "logical")] == 1
    assert samples[("pgsafe_backup_last_success_timestamp_seconds", "logical")] == 1714557600
    assert samples[("pgsafe_repository_size_bytes", None)] > 0
