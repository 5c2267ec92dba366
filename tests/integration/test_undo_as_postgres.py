"""``pgsafe mistakes`` and ``pgsafe undo`` run as the server's own OS user (postgres), not
root: the WAL is read, the throwaway cluster is recovered and started as that user, with
no user switching, and the rows come back into the live database.

The cluster and its repository are made by the root test process (the repository is owned
by postgres, as ``repository_owner`` makes it); pgsafe itself then runs as postgres, from
a copy of the package that account can read (``as_user``, from test_ordinary_user)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe
from tests.integration.test_ordinary_user import RunAsUser, as_user

__all__ = ["as_user"]  # the fixture, shared with test_ordinary_user


@dataclass
class Shop:
    cluster: LocalCluster
    repo: Path

    @property
    def db(self) -> str:
        return self.cluster.conninfo("shop")

    def mistake(self, sql: str) -> int:
        with psycopg.connect(self.db) as conn:
            conn.execute(sql)
            row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None
            conn.commit()
        return int(str(row[0]))


@pytest.fixture(scope="module")
def shop(state_home: Path) -> Iterator[Shop]:
    base = reachable_tmpdir("pgsafe-undo-user-")
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    c = make_cluster(base, "live", archive_settings(repo, state_home))
    psql_exec(c.conninfo(), "CREATE DATABASE shop")
    psql_exec(
        c.conninfo("shop"),
        "CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);"
        "INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 40) g;",
    )
    r = run_pgsafe("--repo", str(repo_path), "backup", "-d", c.conninfo())
    assert r.returncode == 0, r.stderr
    yield Shop(c, repo_path)
    c.destroy()
    shutil.rmtree(base, ignore_errors=True)


def test_mistakes_as_postgres(shop: Shop, as_user: RunAsUser) -> None:
    xid = shop.mistake("DELETE FROM orders WHERE id BETWEEN 1 AND 4")
    switch_and_wait(shop.cluster.conninfo(), Repository.open(str(shop.repo)), timeout=60)
    r = as_user("--repo", str(shop.repo), "mistakes", "-d", shop.db, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    found = {m["xid"]: m for m in doc["mistakes"]}
    assert found[xid]["tables"] == ["public.orders"] and found[xid]["rows"] == 4
    assert f"undo {xid}" in found[xid]["undo"]


def test_undo_as_postgres(shop: Shop, as_user: RunAsUser) -> None:
    before = query(shop.db, "SELECT * FROM orders WHERE id BETWEEN 11 AND 15 ORDER BY id")
    xid = shop.mistake("DELETE FROM orders WHERE id BETWEEN 11 AND 15")
    shop.mistake("INSERT INTO orders VALUES (1000, 5)")  # later, legitimate: stays
    switch_and_wait(shop.cluster.conninfo(), Repository.open(str(shop.repo)), timeout=60)
    r = as_user("--repo", str(shop.repo), "undo", str(xid), "-d", shop.db, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["applied"] is True and doc["rows_back"] == 5
    assert query(shop.db, "SELECT * FROM orders WHERE id BETWEEN 11 AND 15 ORDER BY id") == before
    assert query(shop.db, "SELECT amount FROM orders WHERE id = 1000") == [(5,)]
