"""A dump meets a concurrent schema change: it waits, or fails with a message — it never hangs.

The hang this guards against: the fingerprint read a table (and kept its lock) before
pg_dump had locked it; an ALTER TABLE then queued behind the fingerprint and pg_dump
behind the ALTER, while the fingerprint's transaction waited for pg_dump.  The moment
is made deterministic: a second table, created first (pg_dump locks in OID order) and
named last (the fingerprint reads in name order), is held locked by another session,
so that both pg_dump and the old fingerprint stop on it; the ALTER arrives then.  Every
wait is bounded; on a hang the test breaks the cycle itself and fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, query, run_pgsafe

DB = "dump_locks"
BOUND = 60.0


@pytest.fixture
def db(pg: LocalCluster) -> Iterator[str]:
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {DB}")
    psql_exec(
        pg.conninfo(DB),
        "CREATE TABLE zz(id int, v int);"  # created first: pg_dump locks it first
        "CREATE TABLE aa(id int, v int);"  # named first: the fingerprint reads it first
        "INSERT INTO zz SELECT g, g FROM generate_series(1, 100) g;"
        "INSERT INTO aa SELECT g, g FROM generate_series(1, 100) g;",
    )
    yield DB
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def waiting_on(pg: LocalCluster, table: str) -> list[int]:
    rows = query(
        pg.conninfo(DB),
        "SELECT pid FROM pg_locks WHERE NOT granted AND locktype = 'relation'"
        f" AND relation = '{table}'::regclass",
    )
    return [int(str(r[0])) for r in rows]


def start_dump(pg: LocalCluster, repo: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pgsafe", "--repo", str(repo), "--json", "dump",
         "-d", pg.conninfo(DB), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], pg: LocalCluster, unblock: Callable[[], None]) -> int:
    """The dump's exit code within BOUND seconds; on a hang, break it and fail."""
    try:
        proc.wait(timeout=BOUND)
    except subprocess.TimeoutExpired:
        unblock()
        proc.kill()
        proc.wait()
        pytest.fail(f"the dump hung for {BOUND:.0f} s behind a concurrent DDL")
    return proc.returncode


@pytest.mark.timeout(240)
def test_alter_table_during_dump_start_does_not_hang(pg: LocalCluster, db: str, repo: Path) -> None:
    holder = psycopg.connect(pg.conninfo(db))
    holder.execute("LOCK TABLE zz IN ACCESS EXCLUSIVE MODE")  # held until commit
    proc = start_dump(pg, repo, "--lock-wait-timeout", "120")
    alter_pid: list[int] = []
    alter_error: list[BaseException] = []

    def alter() -> None:
        try:
            with psycopg.connect(pg.conninfo(db), autocommit=True) as c:
                alter_pid.append(c.info.backend_pid)
                c.execute("ALTER TABLE aa ALTER COLUMN v SET DEFAULT 7")
        except BaseException as exc:  # terminated when the test breaks a hang
            alter_error.append(exc)

    try:
        wait_for("pg_dump to wait for the locked table", lambda: bool(waiting_on(pg, "zz")))
        ddl = threading.Thread(target=alter)
        time.sleep(1.0)  # the old fingerprint has read aa and waits on zz too by now
        ddl.start()
        wait_for("the ALTER to run or queue", lambda: bool(alter_pid))
        time.sleep(0.5)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        holder.commit()
        holder.close()

    def unblock() -> None:
        for pid in alter_pid:
            psql_exec(pg.conninfo(), f"SELECT pg_terminate_backend({pid})")

    rc = finish(proc, pg, unblock)
    ddl.join(timeout=BOUND)
    out, err = proc.communicate()
    assert rc == 0, err
    assert not alter_error, alter_error
    assert query(pg.conninfo(db), "SELECT column_default FROM information_schema.columns"
                 " WHERE table_name = 'aa' AND column_name = 'v'") == [("7",)]  # fmt: skip
    backup = json.loads(out)["id"]
    r = run_pgsafe("--repo", str(repo), "--json", "show", backup)
    fingerprint = json.loads(r.stdout)["fingerprint"][""]
    assert fingerprint["public.aa"]["rows"] == 100 and fingerprint["public.zz"]["rows"] == 100


@pytest.mark.timeout(240)
def test_table_held_past_the_lock_timeout_fails_the_dump_cleanly(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    holder = psycopg.connect(pg.conninfo(db))
    holder.execute("LOCK TABLE zz IN ACCESS EXCLUSIVE MODE")
    try:
        proc = start_dump(pg, repo, "--lock-wait-timeout", "2")
        rc = finish(proc, pg, holder.rollback)
        _out, err = proc.communicate()
    finally:
        holder.rollback()
        holder.close()
    assert rc == 1, (rc, err)
    assert "waiting for a table lock" in err and "--lock-wait-timeout" in err, err
    assert "Traceback" not in err
    listed = json.loads(run_pgsafe("--repo", str(repo), "--json", "list").stdout)["backups"]
    assert listed == []
    assert query(pg.conninfo(db), "SELECT count(*) FROM zz") == [(100,)]
