"""guard around a destructive statement prints an undo command; running it brings the
data back."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, query, run_pgsafe, skip_if_dumps_rejected


@skip_if_dumps_rejected()
def test_guard_then_undo(repo: Path, pg: LocalCluster) -> None:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS guarded")
    psql_exec(pg.conninfo(), "CREATE DATABASE guarded")
    db = pg.conninfo("guarded")
    psql_exec(
        db,
        "CREATE TABLE accounts(id int primary key, balance int);"
        "INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 500) g",
    )
    r = run_pgsafe(
        "--repo",
        str(repo),
        "guard",
        "-d",
        db,
        "--json",
        "--",
        "psql",
        "-X",
        "-q",
        "-d",
        db,
        "-c",
        "DELETE FROM accounts WHERE id > 10",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["method"] == "logical backup" and doc["exit_code"] == 0
    assert query(db, "SELECT count(*) FROM accounts") == [(10,)]
    undo = shlex.split(doc["undo"])
    assert undo[0] == "pgsafe" and "restore" in undo and "--clean" in undo
    u = run_pgsafe(*undo[1:])
    assert u.returncode == 0, u.stderr
    assert query(db, "SELECT count(*), sum(balance) FROM accounts") == [(500, 1252500)]


def test_guard_passes_the_command_exit_code_and_text_output(repo: Path, pg: LocalCluster) -> None:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS guarded2")
    psql_exec(pg.conninfo(), "CREATE DATABASE guarded2")
    db = pg.conninfo("guarded2")
    r = run_pgsafe("--repo", str(repo), "guard", "-d", db, "--", "sh", "-c", "exit 7")
    assert r.returncode == 7  # the guarded command's own exit code
    assert "to undo it, run:" in r.stderr and "restore" in r.stderr
    none = run_pgsafe("--repo", str(repo), "guard", "-d", db)
    assert none.returncode == 2 and "no command" in none.stderr
