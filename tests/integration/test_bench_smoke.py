"""Smoke run of the benchmark harness (``benchmarks/run.py --quick --data random``): it
runs end to end on a scale-1 database with the incompressible table beside pgbench's,
and writes results of the expected shape.  No timing is
asserted: the figures of a smoke run on a shared machine mean nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import reachable_tmpdir

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/time").exists(), reason="GNU time (/usr/bin/time) is not installed"
)


def test_quick_run_writes_results_of_the_expected_shape() -> None:
    out = reachable_tmpdir("pgsafe-bench-smoke-")
    try:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-pgbackrest",
             "--data", "random", "--out", str(out)],
            capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        files = sorted(out.glob("*-quick-random.json"))
        assert len(files) == 1
        doc = json.loads(files[0].read_text())
        assert files[0].with_suffix(".md").read_text().startswith("# pgsafe benchmark")

        assert {"cpu_model", "cores", "memory_gib", "kernel", "postgresql"} <= set(doc["machine"])
        assert doc["scale"] == 1 and doc["runs"] == 1 and doc["data"] == "random"
        assert doc["random_rows"] == {"1": 40_000}  # the incompressible table was loaded
        assert set(doc["parts"]) == {"backup", "restore", "walpush", "logical", "scaling"}
        contenders = [
            *doc["parts"]["backup"]["contenders"].items(),
            *doc["parts"]["restore"]["contenders"].items(),
            *doc["parts"]["walpush"]["contenders"].items(),
            *(
                item
                for sub in ("dump", "restore", "verify")
                for item in doc["parts"]["logical"][sub]["contenders"].items()
            ),
        ]
        names = {name for name, _ in contenders}
        assert {"pgsafe backup", "tar floor", "pgsafe recover", "tar extraction",
                "pgsafe wal-push", "cp", "python3 -c pass", "pgsafe dump", "pg_dump -Fc",
                "pgsafe restore -j 2", "pg_restore -j 2", "pgsafe verify",
                "bare restore"} <= names  # fmt: skip
        for name, c in contenders:
            assert c["runs"], name
            for run in c["runs"]:
                assert {"wall_s", "cpu_s", "max_rss_mb"} <= set(run), name
            assert set(c["median"]) >= {"wall_s", "cpu_s", "max_rss_mb"}, name
        # the server's share of a backup (pgsafe's zstd runs in the walsender) is measured
        for name, c in doc["parts"]["backup"]["contenders"].items():
            assert c["median"]["server_cpu_s"] >= 0, name
        assert doc["parts"]["backup"]["contenders"]["pgsafe backup"]["median"]["out_bytes"] > 0
        assert "1" in doc["parts"]["scaling"]["scales"]

        by_name = {t["name"]: t for t in doc["targets"]}
        assert {"backup vs raw-read floor", "dump vs pg_dump -Fc", "peak RSS"} <= set(by_name)
        for t in doc["targets"]:
            assert {"goal", "met", "ratio", "detail"} <= set(t)
            assert t["met"] in (True, False, None)
        assert "pgBackRest left out (--no-pgbackrest)" in doc["notes"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
