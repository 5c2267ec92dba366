"""A database may be named anything PostgreSQL accepts; its backup's object names are
made from a safe stem, so the backup is never DAMAGED by its own database's name."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgsafe.cluster.local import LocalCluster
from pgsafe.logical.objectnames import stem
from tests.conftest import psql_exec, query, run_pgsafe, skip_if_dumps_rejected


@pytest.mark.parametrize("stem_of", ["shop", "a.b-c_d", "caf\u00e9"])
def test_ordinary_names_are_their_own_stem(stem_of: str) -> None:
    assert stem(stem_of) == stem_of


def test_odd_names_get_distinct_safe_stems() -> None:
    odd = ["a/b", "a_b\n", "..", ".hidden", "x\x1b[31m", "a\\b"]
    stems = [stem(n) for n in odd]
    assert len(set(stems)) == len(stems)
    for s in stems:
        assert "/" not in s and "\\" not in s and s.isprintable() and not s.startswith(".")


@skip_if_dumps_rejected()
@pytest.mark.parametrize("fmt", ["custom", "directory", "plain"])
def test_a_database_with_an_odd_name_backs_up_and_restores(
    repo: Path, pg: LocalCluster, fmt: str, tmp_path: Path
) -> None:
    name, target = f"../odd/name {fmt}", f"odd_restored_{fmt}"
    ident = sql.Identifier(name).as_string(None)
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {ident}")
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {ident}")
    conn = make_conninfo(pg.conninfo(), dbname=name)
    psql_exec(conn, "CREATE TABLE t AS SELECT g FROM generate_series(1, 25) g")
    r = run_pgsafe("--repo", str(repo), "--json", "dump", "-d", conn, "--format", fmt)
    assert r.returncode == 0, r.stderr
    bid = json.loads(r.stdout)["id"]
    listed = json.loads(run_pgsafe("--repo", str(repo), "--json", "list").stdout)["backups"]
    assert {b["id"]: b["status"] for b in listed}[bid] == "ok"
    r = run_pgsafe("--repo", str(repo), "restore", bid, "--create", "-d", pg.conninfo(target))
    assert r.returncode == 0, r.stderr
    assert query(pg.conninfo(target), "SELECT count(*) FROM t") == [(25,)]
    # verify restores into a throwaway cluster under the same odd name
    r = run_pgsafe("--repo", str(repo), "verify", bid)
    assert r.returncode == 0, r.stdout + r.stderr
    # the export's README restores it without pgsafe, its shell commands run as written
    out = tmp_path / "export"
    r = run_pgsafe("--repo", str(repo), "export", bid, str(out))
    assert r.returncode == 0, r.stderr
    commands = [
        line.strip() for line in (out / "README.txt").read_text().splitlines()
        if line.startswith("    ") and not line.strip().startswith("pg_restore -l")
    ]  # fmt: skip
    psql_exec(pg.conninfo(), f"DROP DATABASE {ident}")
    env = {
        **os.environ, "PGHOST": str(pg.run_dir), "PGPORT": str(pg.port), "PGUSER": "postgres",
        "PATH": f"{Path(pg.program('pg_restore')).parent}:{os.environ['PATH']}",
    }  # fmt: skip
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=out, env=env, capture_output=True)
        assert done.returncode == 0, (command, done.stderr)
    assert query(conn, "SELECT count(*) FROM t") == [(25,)]
