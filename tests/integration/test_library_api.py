"""The README's "Use pgsafe as a library" example, run as written against a real cluster
(the code block is read from README.md, so the README cannot drift from the API)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, reachable_tmpdir

ROOT = Path(__file__).resolve().parents[2]
HEADING = "## Use pgsafe as a library"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(HEADING) :]
    section = section[: section.find("\n## ", len(HEADING))]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the library section holds one python example"
    return str(blocks[0])


def test_the_readme_library_example_runs(pg: LocalCluster, state_home: Path) -> None:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS libshop")
    psql_exec(pg.conninfo(), "CREATE DATABASE libshop")
    psql_exec(
        pg.conninfo("libshop"),
        "CREATE TABLE orders(id int PRIMARY KEY, total numeric);"
        "INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 200) g",
    )
    work = reachable_tmpdir("pgsafe-lib-")
    env = {
        # the connection settings are the example's own; PGSAFE_PG_BINDIR stays: it names
        # where this machine's PostgreSQL programs are (the test matrix's embedded servers)
        **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
        **{k: v for k, v in os.environ.items() if k == "PGSAFE_PG_BINDIR"},
        "PGSAFE_HOME": str(state_home),
        "PGHOST": str(pg.run_dir),
        "PGPORT": str(pg.port),
        "PGUSER": "postgres",
        "PGDATABASE": "libshop",
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-c", readme_example()],
            cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        assert re.search(r"^dumped libshop into \S+: \d+ bytes stored$", out, re.MULTILINE), out
        assert "FAILED" not in out and "ok  " in out
        backup_id = out.split(" into ", 1)[1].split(":", 1)[0]
        assert f"{backup_id} logical libshop ok" in out
        assert (work / "backups" / "pgsafe-repo.json").is_file()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS libshop")
