"""``pgsafe mistakes`` and ``pgsafe undo`` run as the server's own OS user (postgres), not
root: the WAL is read, the throwaway cluster is recovered and started as that user, with
no user switching, and the rows come back into the live database.

The cluster and its repository are made by the root test process (the repository is owned
by postgres, as ``repository_owner`` makes it); pgsafe itself then runs as postgres, from
a copy of the package that account can read (``as_user``, from test_ordinary_user)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.archiving import archiving_cluster, committed_xid
from tests.conftest import psql_exec, query
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
        return committed_xid(self.db, sql)


@pytest.fixture(scope="module")
def shop(state_home: Path) -> Iterator[Shop]:
    with archiving_cluster("pgsafe-undo-user-", state_home) as a:
        psql_exec(a.cluster.conninfo(), "CREATE DATABASE shop")
        psql_exec(
            a.cluster.conninfo("shop"),
            "CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);"
            "INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 40) g;",
        )
        a.backup()
        yield Shop(a.cluster, a.repo_path)


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
