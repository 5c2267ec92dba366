"""pgsafe undo on a real archiving cluster: each mistake is made on the live server,
later good transactions follow, and undo brings the lost rows back into the live
database (the throwaway cluster is gone afterwards)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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
from tests.conftest import Result, make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe


@dataclass
class Live:
    cluster: LocalCluster
    repo: Path
    base: Path
    home: Path

    @property
    def db(self) -> str:
        return self.cluster.conninfo("shop")

    def pgsafe(self, *args: str) -> Result:
        return run_pgsafe("--repo", str(self.repo), *args, "-d", self.db, timeout=600)

    def mistake(self, sql: str) -> int:
        """Run ``sql`` in one transaction on the live database; its xid."""
        with psycopg.connect(self.db) as conn:
            conn.execute(sql)
            row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None
            conn.commit()
        return int(row[0])

    def archive(self) -> None:
        repo = Repository.open(str(self.repo), "main")
        switch_and_wait(self.cluster.conninfo(), repo, timeout=60)

    def leftovers(self) -> list[str]:
        d = self.home / "clusters"
        return [p.name for p in d.iterdir() if p.name.startswith("undo-")] if d.exists() else []


@pytest.fixture(scope="module")
def live(state_home: Path) -> Iterator[Live]:
    base = reachable_tmpdir("pgsafe-undo-")
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    c = make_cluster(base, "live", archive_settings(repo, state_home))
    psql_exec(c.conninfo(), "CREATE DATABASE shop")
    psql_exec(
        c.conninfo("shop"),
        "CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL, note text);"
        "INSERT INTO orders SELECT g, g * 10, 'order ' || g FROM generate_series(1, 100) g;"
        "CREATE TABLE log (at int, msg text);"  # no primary key
        "INSERT INTO log SELECT g % 5, 'line' FROM generate_series(1, 20) g;"
        "CREATE TABLE customers (id serial PRIMARY KEY, name text UNIQUE);"
        "INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 30) g;"
        "CREATE INDEX customers_lower ON customers (lower(name));"
        "CREATE TABLE lines (id int PRIMARY KEY, order_id int REFERENCES orders ON DELETE CASCADE,"
        " qty int);"
        "INSERT INTO lines SELECT g, g, 1 FROM generate_series(1, 100) g;"
        "CREATE TABLE events (id int, day date, what text, PRIMARY KEY (id, day))"
        " PARTITION BY RANGE (day);"
        "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
        "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
        "INSERT INTO events SELECT g, date '2024-06-01' + g, 'e' FROM generate_series(1, 200) g;"
        "CREATE TABLE stock (sku int PRIMARY KEY, qty int);"
        "INSERT INTO stock SELECT g, 5 FROM generate_series(1, 50) g;",
    )
    r = run_pgsafe("--repo", str(repo_path), "backup", "-d", c.conninfo(), "--json")
    assert r.returncode == 0, r.stderr
    yield Live(c, repo_path, base, state_home)
    c.destroy()
    shutil.rmtree(base, ignore_errors=True)


def count(live: Live, sql: str) -> int:
    return int(query(live.db, sql)[0][0])


def test_delete_with_primary_key_comes_back_later_work_stays(live: Live) -> None:
    before = query(live.db, "SELECT * FROM orders WHERE id BETWEEN 11 AND 20 ORDER BY id")
    xid = live.mistake("DELETE FROM orders WHERE id BETWEEN 11 AND 20")
    live.mistake("INSERT INTO orders VALUES (1000, 5, 'later, legitimate')")
    live.archive()
    dry = live.pgsafe("undo", str(xid), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    tables = {t["table"]: t for t in plan["tables"]}
    assert tables["public.orders"]["counts"] == {"insert": 10}
    assert plan["applied"] is False
    assert count(live, "SELECT count(*) FROM orders WHERE id BETWEEN 11 AND 20") == 0
    r = live.pgsafe("undo", str(xid))
    assert r.returncode == 0, r.stderr
    assert "10 insert" in r.stdout
    assert query(live.db, "SELECT * FROM orders WHERE id BETWEEN 11 AND 20 ORDER BY id") == before
    assert count(live, "SELECT count(*) FROM orders WHERE id = 1000") == 1
    assert live.leftovers() == []
