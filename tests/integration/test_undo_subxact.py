"""Rows a transaction deleted or changed through a subtransaction (a savepoint, a
plpgsql EXCEPTION block) or under a multixact (a row another transaction, or the
transaction itself before a savepoint, had locked): ``pgsafe mistakes`` lists the top
transaction with all its rows, and ``pgsafe undo`` of it brings every row back — the
rows' ``xmax`` names a subtransaction or a multixact, not the top transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.archiving import archiving_cluster
from tests.conftest import psql_exec, query
from tests.integration.test_undo import Live


@pytest.fixture(scope="module")
def live(state_home: Path) -> Iterator[Live]:
    with archiving_cluster("pgsafe-undo-sub-", state_home) as a:
        psql_exec(a.cluster.conninfo(), "CREATE DATABASE shop")
        psql_exec(
            a.cluster.conninfo("shop"),
            "CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);"
            "INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 100) g;"
            "CREATE TABLE log (at int, msg text);"  # no primary key
            "INSERT INTO log SELECT g % 5, 'line' FROM generate_series(1, 20) g;",
        )
        a.backup()
        yield Live(a.cluster, a.repo_path, a.base, state_home)


def _listed(live: Live, xid: int) -> dict[str, int]:
    """Rows per table that ``mistakes`` lists for transaction ``xid``."""
    r = live.pgsafe("mistakes", "--json")
    assert r.returncode == 0, r.stderr
    found = [m for m in json.loads(r.stdout)["mistakes"] if m["xid"] == xid]
    assert len(found) == 1, r.stdout
    out: dict[str, int] = {}
    for c in found[0]["changes"]:
        out[c["table"]] = out.get(c["table"], 0) + c["rows"]
    return out


def test_deletes_in_savepoints_and_an_exception_block_come_back(live: Live) -> None:
    before = query(live.db, "SELECT * FROM orders WHERE id <= 8 ORDER BY id")
    log_before = query(live.db, "SELECT at, msg, count(*) FROM log GROUP BY 1, 2 ORDER BY 1, 2")
    xid = live.mistake(
        "DELETE FROM orders WHERE id <= 2;"
        "SAVEPOINT a; DELETE FROM orders WHERE id BETWEEN 3 AND 5; RELEASE SAVEPOINT a;"
        "SAVEPOINT b; DELETE FROM orders WHERE id = 99; ROLLBACK TO SAVEPOINT b;"
        "DO $$ BEGIN BEGIN DELETE FROM orders WHERE id BETWEEN 6 AND 8;"
        " DELETE FROM log WHERE at = 1; EXCEPTION WHEN others THEN NULL; END; END $$"
    )
    live.mistake("INSERT INTO orders VALUES (1000, 5)")  # later, legitimate: stays
    live.archive()
    assert _listed(live, xid) == {"public.orders": 8, "public.log": 4}
    r = live.pgsafe("undo", str(xid), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    tables = {t["table"]: t["counts"] for t in doc["tables"]}
    assert tables == {"public.orders": {"insert": 8}, "public.log": {"insert": 4}}
    assert query(live.db, "SELECT * FROM orders WHERE id <= 8 ORDER BY id") == before
    assert query(live.db, "SELECT at, msg, count(*) FROM log GROUP BY 1, 2 ORDER BY 1, 2") == (
        log_before
    )
    assert query(live.db, "SELECT count(*) FROM orders WHERE id IN (99, 1000)") == [(2,)]
    assert live.leftovers() == []


def test_undo_given_a_subtransactions_id_undoes_its_transaction(live: Live) -> None:
    """Only the savepoint writes: pg_waldump shows the DELETE under the subtransaction's
    id, which ``undo`` takes for its top transaction."""
    before = query(live.db, "SELECT * FROM orders WHERE id BETWEEN 30 AND 34 ORDER BY id")
    with psycopg.connect(live.db) as conn, psycopg.connect(live.db) as other:
        conn.execute("SAVEPOINT s; DELETE FROM orders WHERE id BETWEEN 30 AND 34")
        row = other.execute("SELECT xmax::text::bigint FROM orders WHERE id = 30").fetchone()
        top = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        conn.execute("RELEASE SAVEPOINT s")
        conn.commit()
    assert row is not None and top is not None
    sub, xid = int(row[0]), int(top[0])
    assert sub != xid
    live.archive()
    assert _listed(live, xid) == {"public.orders": 5}
    r = live.pgsafe("undo", str(sub), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["xid"] == xid and doc["rows_back"] == 5
    assert query(live.db, "SELECT * FROM orders WHERE id BETWEEN 30 AND 34 ORDER BY id") == before


def test_rows_whose_xmax_is_a_multixact_come_back(live: Live) -> None:
    """An UPDATE of a row another transaction holds FOR KEY SHARE (a foreign-key check
    does), and DELETEs in a savepoint of rows the transaction locked FOR SHARE: the
    rows' xmax is a multixact."""
    orders = query(live.db, "SELECT * FROM orders WHERE id IN (50, 51) ORDER BY id")
    log_before = query(live.db, "SELECT at, msg, count(*) FROM log GROUP BY 1, 2 ORDER BY 1, 2")
    with psycopg.connect(live.db) as locker, psycopg.connect(live.db) as conn:
        locker.execute("SELECT * FROM orders WHERE id = 50 FOR KEY SHARE")
        conn.execute(
            "UPDATE orders SET amount = -1 WHERE id = 50;"
            "SELECT * FROM orders WHERE id = 51 FOR SHARE;"
            "SELECT * FROM log WHERE at = 2 FOR SHARE;"
            "SAVEPOINT s; DELETE FROM orders WHERE id = 51; DELETE FROM log WHERE at = 2;"
            "RELEASE SAVEPOINT s"
        )
        multi = locker.execute(  # the old version, which the locker still sees
            "SELECT count(*) FROM orders o, pg_get_multixact_members(o.xmax) m"
            " WHERE o.id = 50 AND m.mode = 'nokeyupd'"
        ).fetchone()
        top = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        conn.commit()
        locker.commit()
    assert multi == (1,) and top is not None  # the case this test is about
    xid = int(top[0])
    live.archive()
    assert _listed(live, xid) == {"public.orders": 2, "public.log": 4}
    r = live.pgsafe("undo", str(xid), "--json")
    assert r.returncode == 0, r.stderr
    tables = {t["table"]: t["counts"] for t in json.loads(r.stdout)["tables"]}
    assert tables == {"public.orders": {"insert": 1, "update": 1}, "public.log": {"insert": 4}}
    assert query(live.db, "SELECT * FROM orders WHERE id IN (50, 51) ORDER BY id") == orders
    assert query(live.db, "SELECT at, msg, count(*) FROM log GROUP BY 1, 2 ORDER BY 1, 2") == (
        log_before
    )
