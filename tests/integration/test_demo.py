"""The whole demo runs end to end on a sandbox (both parts) and every check passes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import reachable_tmpdir, run_pgsafe, skip_without_tool


def test_demo_both_parts(tmp_path: Path) -> None:
    skip_without_tool("pg_waldump", "the demo's recovery to a time")
    home = reachable_tmpdir("pgsafe-demo-")
    env = {"PGSAFE_HOME": str(home)}
    try:
        r = run_pgsafe("demo", "--json", env=env, timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert doc["ok"] is True
        names = [c["name"] for c in doc["checks"]]
        for expected in (
            "plain backup taken",
            "custom backup taken",
            "single-table backup taken",
            "all-databases backup taken",
            "restore --clean from the custom backup",
            "restore -t important_data from the single-table backup",
            "restore --create -d ecommerce_restored",
            "verify custom backup",
        ):
            assert expected in names
        assert all(c["ok"] for c in doc["checks"])
        recoveries = doc["physical"]["recoveries"]
        assert [r["label"] for r in recoveries] == ["after transaction 2", "after transaction 1"]
        assert all(r["ok"] for r in recoveries)
        assert "after transaction 2: ids = [1, 2]" in names
        assert "after transaction 1: count = 1" in names
        # part 2 ends with the mistake found in the WAL and undone in the live database
        assert "pgsafe mistakes finds the DELETE (4 rows)" in names
        assert "undo: rows 1-4 back in the live database" in names
        assert "undo: transaction 5 is still there" in names
        undo = doc["physical"]["undo"]
        assert undo["ok"] is True and undo["mistake"]["rows"] == 4
        assert undo["ids_after"] == [1, 2, 3, 4, 5]
        assert set(doc["logical"]["backups"]) == {
            "plain",
            "custom",
            "single-table",
            "all-databases",
        }
        listed = run_pgsafe("--repo", doc["repo"], "--server", "demo", "list", "--json", env=env)
        kinds = [b["kind"] for b in json.loads(listed.stdout)["backups"]]
        assert kinds.count("logical") == 4 and kinds.count("physical") == 1
    finally:
        run_pgsafe("sandbox", "stop", "--remove", env=env)
        os.system(f"rm -rf {home}")
