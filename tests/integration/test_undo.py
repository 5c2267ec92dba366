"""pgsafe undo on a real archiving cluster: each mistake is made on the live server,
later good transactions follow, and undo brings the lost rows back into the live
database (the throwaway cluster is gone afterwards)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.archiving import archiving_cluster, committed_xid
from tests.conftest import Result, psql_exec, query, run_pgsafe


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
        return committed_xid(self.db, sql)

    def archive(self) -> None:
        repo = Repository.open(str(self.repo), "main")
        switch_and_wait(self.cluster.conninfo(), repo, timeout=60)

    def leftovers(self) -> list[str]:
        d = self.home / "clusters"
        return [p.name for p in d.iterdir() if p.name.startswith("undo-")] if d.exists() else []


@pytest.fixture(scope="module")
def live(state_home: Path) -> Iterator[Live]:
    with archiving_cluster("pgsafe-undo-", state_home) as a:
        psql_exec(a.cluster.conninfo(), "CREATE DATABASE shop")
        psql_exec(
            a.cluster.conninfo("shop"),
            "CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL, note text);"
            "INSERT INTO orders SELECT g, g * 10, 'order ' || g FROM generate_series(1, 100) g;"
            "CREATE TABLE log (at int, msg text);"  # no primary key
            "INSERT INTO log SELECT g % 5, 'line' FROM generate_series(1, 20) g;"
            "CREATE TABLE customers (id serial PRIMARY KEY, name text UNIQUE);"
            "INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 30) g;"
            "CREATE INDEX customers_lower ON customers (lower(name));"
            "CREATE TABLE lines (id int PRIMARY KEY,"
            " order_id int REFERENCES orders ON DELETE CASCADE, qty int);"
            "INSERT INTO lines SELECT g, g, 1 FROM generate_series(1, 100) g;"
            "CREATE TABLE events (id int, day date, what text, PRIMARY KEY (id, day))"
            " PARTITION BY RANGE (day);"
            "CREATE TABLE events_2024 PARTITION OF events"
            " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
            "CREATE TABLE events_2025 PARTITION OF events"
            " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
            "INSERT INTO events SELECT g, date '2024-06-01' + g * 2, 'e'"
            " FROM generate_series(1, 200) g;"
            "CREATE TABLE stock (sku int PRIMARY KEY, qty int);"
            "INSERT INTO stock SELECT g, 5 FROM generate_series(1, 50) g;",
        )
        a.backup()
        yield Live(a.cluster, a.repo_path, a.base, state_home)


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


def test_delete_without_primary_key_and_update(live: Live) -> None:
    log_before = query(live.db, "SELECT at, msg, count(*) FROM log GROUP BY 1, 2 ORDER BY 1, 2")
    stock_before = query(live.db, "SELECT * FROM stock ORDER BY sku")
    xid = live.mistake("DELETE FROM log WHERE at = 3; UPDATE stock SET qty = 0 WHERE sku <= 20")
    live.mistake("UPDATE stock SET qty = 99 WHERE sku = 50")  # later, elsewhere: stays
    live.archive()
    r = live.pgsafe("undo", str(xid), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    tables = {t["table"]: t for t in doc["tables"]}
    assert tables["public.log"]["key"] == [] and tables["public.log"]["counts"] == {"insert": 4}
    assert tables["public.stock"]["counts"] == {"update": 20}
    assert doc["applied"] is True and doc["rows_back"] == 24
    assert query(live.db, "SELECT at, msg, count(*) FROM log GROUP BY 1, 2 ORDER BY 1, 2") == (
        log_before
    )
    stock_now = query(live.db, "SELECT * FROM stock ORDER BY sku")
    assert stock_now[:49] == stock_before[:49] and stock_now[49] == (50, 99)


def test_later_conflicting_insert_is_refused_then_skipped(live: Live) -> None:
    xid = live.mistake("DELETE FROM orders WHERE id BETWEEN 31 AND 35")
    live.mistake("INSERT INTO orders VALUES (33, 1, 'a new order 33')")
    live.archive()
    r = live.pgsafe("undo", str(xid))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "conflict in public.orders: (33)" in r.stdout and "--on-conflict" in r.stderr
    assert count(live, "SELECT count(*) FROM orders WHERE id BETWEEN 31 AND 35") == 1
    assert live.leftovers() == []
    r = live.pgsafe("undo", str(xid), "--on-conflict", "skip")
    assert r.returncode == 0, r.stderr
    assert query(live.db, "SELECT id, note FROM orders WHERE id BETWEEN 31 AND 35 ORDER BY id") == [
        (31, "order 31"),
        (32, "order 32"),
        (33, "a new order 33"),
        (34, "order 34"),
        (35, "order 35"),
    ]


def test_two_tables_in_one_transaction_parent_first(live: Live) -> None:
    xid = live.mistake("DELETE FROM orders WHERE id BETWEEN 41 AND 45")  # cascades to lines
    live.archive()
    r = live.pgsafe("undo", str(xid), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [t["table"] for t in doc["tables"]] == ["public.orders", "public.lines"]
    assert count(live, "SELECT count(*) FROM lines WHERE order_id BETWEEN 41 AND 45") == 5


def test_truncate_and_partitioned_table(live: Live) -> None:
    events = query(live.db, "SELECT * FROM events ORDER BY id")
    xid = live.mistake("DELETE FROM events WHERE id % 2 = 0; TRUNCATE customers CASCADE")
    live.mistake("INSERT INTO customers (id, name) VALUES (500, 'new customer')")
    live.archive()
    r = live.pgsafe("undo", str(xid), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    kinds = {t["table"]: t["kind"] for t in doc["tables"]}
    assert kinds["public.customers"] == "truncate"
    assert {"public.events_2024", "public.events_2025"} <= set(kinds)
    assert query(live.db, "SELECT * FROM events ORDER BY id") == events
    assert count(live, "SELECT count(*) FROM customers") == 31


def test_drop_table_comes_back_whole(live: Live) -> None:
    psql_exec(
        live.db,
        "CREATE TABLE notes (id serial PRIMARY KEY, body text CHECK (body <> ''));"
        "CREATE INDEX notes_body ON notes (body);"
        "INSERT INTO notes (body) SELECT 'n' || g FROM generate_series(1, 25) g",
    )
    live.archive()
    xid = live.mistake("DROP TABLE notes")
    live.archive()
    r = live.pgsafe("undo", str(xid), "-t", "notes")
    assert r.returncode == 0, r.stderr
    assert count(live, "SELECT count(*) FROM notes") == 25
    assert count(live, "SELECT count(*) FROM pg_indexes WHERE tablename = 'notes'") == 2
    # the owned sequence, past every id (recovery may put it up to 32 ahead, as PostgreSQL does)
    assert count(live, "SELECT nextval('notes_id_seq')") >= 26
    psql_exec(live.db, "INSERT INTO notes (body) VALUES ('after')")


def test_restore_table_as_of_a_time_under_a_new_name(live: Live) -> None:
    at = str(query(live.db, "SELECT clock_timestamp()")[0][0])
    time.sleep(0.5)
    live.mistake("UPDATE orders SET amount = -1")
    live.archive()
    r = run_pgsafe(
        "--repo",
        str(live.repo),
        "restore-table",
        "-t",
        "orders",
        "--time",
        at,
        "--as",
        "orders_then",
        "-d",
        live.db,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert count(live, "SELECT count(*) FROM orders_then WHERE amount = -1") == 0
    assert count(live, "SELECT count(*) FROM orders WHERE amount = -1") > 0
    assert count(live, "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_then_pkey'") == 1


def test_bad_inputs_exit_2_nothing_changed(live: Live, pg: LocalCluster) -> None:
    harmless = live.mistake("INSERT INTO orders VALUES (2000, 1, 'fine')")
    xid = live.mistake("DELETE FROM stock WHERE sku = 1")
    live.archive()
    r = live.pgsafe("undo", str(harmless))  # not destructive: refused, the candidates listed
    assert r.returncode == 2 and "not a destructive transaction" in r.stderr, r.stderr
    assert f"{xid} (delete public.stock" in r.stderr
    r = live.pgsafe("undo", str(xid), "-t", "orders")
    assert r.returncode == 2 and "public.stock" in r.stderr, r.stderr
    r = live.pgsafe("undo", "4000000000")
    assert r.returncode == 2 and "in the window of WAL read" in r.stderr, r.stderr
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS shop")
    psql_exec(pg.conninfo(), "CREATE DATABASE shop")
    other = run_pgsafe("--repo", str(live.repo), "undo", str(xid), "-d", pg.conninfo("shop"))
    assert other.returncode == 2 and "system identifier" in other.stderr, other.stderr
    r = live.pgsafe("undo")
    assert r.returncode == 2
    assert count(live, "SELECT count(*) FROM stock WHERE sku = 1") == 0
    assert live.leftovers() == []


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_removes_the_throwaway_cluster(live: Live) -> None:
    xid = live.mistake("DELETE FROM stock WHERE sku = 2")
    live.archive()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgsafe", "--repo", str(live.repo), "undo", str(xid), "-d", live.db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test run started in the background of a script inherits SIGINT ignored, and
        # Python then leaves it so: Ctrl-C as a terminal delivers it needs the default
        preexec_fn=_sigint_default,
    )
    clusters = live.home / "clusters"
    deadline = time.monotonic() + 120
    started = False
    while time.monotonic() < deadline and proc.poll() is None:
        if list(clusters.glob("undo-*/data/postmaster.pid")):
            started = True
            break
        time.sleep(0.1)
    assert started, "the throwaway cluster never started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, out + err
    assert live.leftovers() == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(clusters / "undo-") not in ps  # no server of a throwaway cluster left running
    assert "aborted" in err or "interrupted" in err
    assert count(live, "SELECT count(*) FROM stock WHERE sku = 2") == 0
    assert os.path.exists(live.repo)


def test_guard_prints_an_undo_that_works_at_once(live: Live) -> None:
    before = query(live.db, "SELECT * FROM orders ORDER BY id")
    risky = ["psql", "-X", "-q", "-d", live.db, "-c", "UPDATE orders SET amount = 0"]
    r = run_pgsafe("--repo", str(live.repo), "guard", "-d", live.db, "--json", "--", *risky)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["method"] == "restore point"
    undo = shlex.split(doc["undo"])
    assert undo[0] == "pgsafe" and "undo" in undo and "--name" in undo
    u = run_pgsafe(*undo[1:], timeout=600)  # at once: no WAL switch in between
    assert u.returncode == 0, u.stderr
    assert query(live.db, "SELECT * FROM orders ORDER BY id") == before
    assert live.leftovers() == []


def test_update_without_primary_key_and_undo_as_a_new_table(live: Live) -> None:
    log_before = query(live.db, "SELECT at, msg, count(*) FROM log GROUP BY 1, 2 ORDER BY 1, 2")
    xid = live.mistake("UPDATE log SET msg = 'overwritten' WHERE at = 1")
    live.mistake("INSERT INTO log VALUES (9, 'later')")
    live.archive()
    r = live.pgsafe("undo", str(xid), "--json")
    assert r.returncode == 0, r.stderr
    table = json.loads(r.stdout)["tables"][0]
    assert table["counts"] == {"insert": 4, "remove": 4}  # old rows back, new versions gone
    after = query(
        live.db, "SELECT at, msg, count(*) FROM log WHERE at <> 9 GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert after == log_before
    assert count(live, "SELECT count(*) FROM log WHERE at = 9") == 1
    xid = live.mistake("TRUNCATE stock")
    live.archive()
    r = live.pgsafe("undo", str(xid), "--as", "stock_before")
    assert r.returncode == 0, r.stderr
    assert count(live, "SELECT count(*) FROM stock") == 0  # the live table is left alone
    assert count(live, "SELECT count(*) FROM stock_before") > 0
    assert count(live, "SELECT count(*) FROM pg_indexes WHERE indexname = 'stock_before_pkey'") == 1


def test_dropped_partitioned_table_comes_back_with_its_partitions(live: Live) -> None:
    events = query(live.db, "SELECT * FROM events ORDER BY id")
    xid = live.mistake("DROP TABLE events")
    live.archive()
    r = live.pgsafe("undo", str(xid), "--json")
    assert r.returncode == 0, r.stderr
    tables = json.loads(r.stdout)["tables"]
    assert [(t["table"], t["action"]) for t in tables] == [("public.events", "create")]
    assert query(live.db, "SELECT * FROM events ORDER BY id") == events
    parts = query(
        live.db,
        "SELECT relname FROM pg_partition_tree('events') p"
        " JOIN pg_class c ON c.oid = p.relid ORDER BY 1",
    )
    assert [p[0] for p in parts] == ["events", "events_2024", "events_2025"]
