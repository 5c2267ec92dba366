"""``pgsafe undo`` and the tables' own triggers, as a role that may write the table but
does not own it: holding the triggers off is refused (exit 2, nothing changed, a hint);
``--fire-triggers`` brings the rows back with the triggers run, and says so."""

from __future__ import annotations

from pathlib import Path

from pgsafe.physical.switch import switch_and_wait
from tests.archiving import archiving_cluster, committed_xid
from tests.conftest import psql_exec, query, run_pgsafe

SETUP = """
CREATE TABLE t (id int PRIMARY KEY, v text, at timestamptz);
INSERT INTO t SELECT g, 'v', '2020-01-01' FROM generate_series(1, 10) g;
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.at := now(); RETURN NEW; END$$;
CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION stamp();
CREATE ROLE clerk LOGIN PASSWORD 'clerk-pw';
GRANT SELECT, INSERT, UPDATE, DELETE ON t TO clerk;
GRANT pg_monitor TO clerk;
"""


def test_a_role_that_does_not_own_the_table(state_home: Path) -> None:
    with archiving_cluster("pgsafe-undo-trig-", state_home) as a:
        psql_exec(a.conninfo, "CREATE DATABASE shop")
        db = a.cluster.conninfo("shop")
        psql_exec(db, SETUP)
        a.backup()
        xid = committed_xid(db, "DELETE FROM t WHERE id <= 3")
        switch_and_wait(a.conninfo, a.repo, timeout=60)
        clerk = f"{db} user=clerk password=clerk-pw host=127.0.0.1"
        r = run_pgsafe("--repo", str(a.repo_path), "undo", str(xid), "-d", clerk, timeout=600)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "trigger 'stamp'" in r.stderr and "may not disable it" in r.stderr
        assert "--fire-triggers" in r.stderr and "clerk-pw" not in r.stdout + r.stderr
        assert query(db, "SELECT count(*) FROM t") == [(7,)]
        r = run_pgsafe("--repo", str(a.repo_path), "undo", str(xid), "-d", clerk,
                       "--fire-triggers", timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert "public.t: 3 row(s) written back differ" in r.stdout
        assert query(db, "SELECT count(*), count(*) FILTER (WHERE at > '2021-01-01') FROM t") == [
            (10, 3)
        ]
