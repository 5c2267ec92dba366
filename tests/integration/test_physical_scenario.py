"""The PITR exercise (issue 3, item 9) as the demo runs it, on a real cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.demo.pitr import run_pitr_scenario
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, query, reachable_tmpdir, skip_without_tool


def test_pitr_scenario_recovers_to_after_transaction_2_then_1(state_home: Path) -> None:
    skip_without_tool("pg_waldump", "the scenario's recoveries to a time")
    base = reachable_tmpdir("pgsafe-scn-")
    c = make_cluster(base, "sandbox")  # not archiving yet: the scenario turns it on
    try:
        repo = Repository.open(str(base / "repo"), "main", create=True, owner=repository_owner())
        report = run_pitr_scenario(c.conninfo(), repo, base, state_home, gap_seconds=1.0)
        assert report.ok, report.text()
        assert [t.id for t in report.transactions] == [1, 2, 3, 4, 5]  # 5: after the DELETE
        first, second = report.recoveries
        assert first.label == "after transaction 2" and second.label == "after transaction 1"
        assert len(first.checks) == 4 and all(ch.ok for ch in first.checks)
        assert "count(*) = 2" in first.checks[0].name
        assert "ARRAY[1]" in second.checks[1].name and all(ch.ok for ch in second.checks)
        last = first.reached.last_transaction_time if first.reached else None
        assert last is not None and last <= first.target_time
        assert "PITR verified ✓" in report.text()
        # the mistake was found and undone in the live database: rows 1-4 back, and
        # transaction 5 (committed after the DELETE) kept; the recovered copies cleaned up
        assert report.undo is not None and report.undo.mistake is not None
        assert report.undo.mistake.rows == 4
        ids = query(c.conninfo("pitr_demo"), "SELECT id FROM transactions ORDER BY id")
        assert ids == [(1,), (2,), (3,), (4,), (5,)]
        assert not LocalCluster(Path(first.pgdata)).is_running()
    finally:
        c.destroy()
        shutil.rmtree(base, ignore_errors=True)
