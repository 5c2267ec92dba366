"""``pgsafe mistakes`` on a real archiving cluster: each kind of destructive transaction
is found with its xid, table and row count; what destroyed nothing is not listed.

History of the source, after one base backup (``t`` has a primary key, ``nopk`` none,
``gone`` and ``s.inside`` exist at backup time, ``fresh`` is made after it)::

    delete 4 rows of t            (xid D)
    update 2 rows of t            (xid U)
    delete 1 of t, 1 of nopk      (xid TWO: a transaction touching two tables)
    delete 3 of t, rolled back    (not listed)
    delete in a savepoint, rolled back to it, then delete 1 of nopk   (xid SP: 1 row)
    delete 2 rows of the partitioned table's partition  (xid PART)
    truncate nopk                 (xid TR)
    vacuum full t                 (a rewrite: not listed)
    drop table gone               (xid DROP: named through the catalog map)
    drop schema s cascade         (xid SCHEMA)
    drop database olddb           (named through the catalog map: it is gone)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.mistakes import segments
from pgsafe.mistakes.model import ChangeKind
from pgsafe.mistakes.scan import MistakeRequest, find_mistakes
from pgsafe.pg.waldump import dump
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, psql_exec, reachable_tmpdir, run_pgsafe

SETUP = """
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;
CREATE TABLE nopk (a int, b text);
INSERT INTO nopk SELECT g, 'b' FROM generate_series(1, 10) g;
CREATE TABLE gone (x int);
INSERT INTO gone VALUES (1), (2);
CREATE SCHEMA s;
CREATE TABLE s.inside (x int);
INSERT INTO s.inside VALUES (1);
CREATE TABLE orders (id int, region text) PARTITION BY LIST (region);
CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu');
CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us');
INSERT INTO orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END
  FROM generate_series(1, 20) g;
"""


@dataclass
class Source:
    cluster: LocalCluster
    repo: Path
    base: Path
    xids: dict[str, int]


def _xid(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
    assert row is not None
    return int(str(row[0]))


def _one(ci: str, *sql: str) -> int:
    """Run ``sql`` in one transaction; its xid."""
    with psycopg.connect(ci) as conn:
        for s in sql:
            conn.execute(s)
        xid = _xid(conn)
        conn.commit()
    return xid


def _history(ci: str) -> dict[str, int]:
    x = {}
    x["D"] = _one(ci, "DELETE FROM t WHERE id <= 4")
    psql_exec(ci, "SELECT pg_switch_wal()")  # more segments: batches of 2 see several
    x["U"] = _one(ci, "UPDATE t SET v = 'changed' WHERE id IN (10, 11)")
    x["TWO"] = _one(ci, "DELETE FROM t WHERE id = 20", "DELETE FROM nopk WHERE a = 1")
    with psycopg.connect(ci) as conn:
        conn.execute("DELETE FROM t WHERE id IN (30, 31, 32)")
        x["ABORTED"] = _xid(conn)
        conn.rollback()
    x["SP"] = _one(
        ci, "SAVEPOINT a", "DELETE FROM t WHERE id > 50", "ROLLBACK TO SAVEPOINT a",
        "SAVEPOINT b", "DELETE FROM nopk WHERE a = 2", "RELEASE SAVEPOINT b",
    )  # fmt: skip
    psql_exec(ci, "SELECT pg_switch_wal()")
    x["PART"] = _one(ci, "DELETE FROM orders WHERE id IN (2, 4)")
    x["TR"] = _one(ci, "TRUNCATE nopk")
    psql_exec(ci, "VACUUM FULL t")
    x["DROP"] = _one(ci, "DROP TABLE gone")
    x["SCHEMA"] = _one(ci, "DROP SCHEMA s CASCADE")
    psql_exec(ci, "DROP DATABASE olddb")
    return x


@pytest.fixture(scope="module")
def src(state_home: Path) -> Iterator[Source]:
    base = reachable_tmpdir("pgsafe-mis-")
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    c = make_cluster(base, "src", archive_settings(repo, state_home))
    ci = c.conninfo()
    psql_exec(ci, SETUP)
    psql_exec(ci, "CREATE DATABASE olddb")
    r = run_pgsafe("--repo", str(repo_path), "backup", "-d", ci)
    assert r.returncode == 0, r.stderr
    xids = _history(ci)
    switch_and_wait(ci, repo, timeout=60)
    yield Source(c, repo_path, base, xids)
    c.destroy()
    shutil.rmtree(base, ignore_errors=True)


def _scan(s: Source, **kw: object) -> dict[int, tuple[tuple[str, str | None, int], ...]]:
    repo = Repository.open(str(s.repo))
    report = find_mistakes(repo, MistakeRequest(conninfo=s.cluster.conninfo(), **kw))  # type: ignore[arg-type]
    return {
        m.xid: tuple((str(c.kind), c.table, c.rows) for c in m.changes) for m in report.mistakes
    }


def test_each_kind_is_found(src: Source) -> None:
    got = _scan(src)
    x = src.xids
    assert got[x["D"]] == (("delete", "public.t", 4),)
    assert got[x["U"]] == (("update", "public.t", 2),)
    assert sorted(got[x["TWO"]]) == [("delete", "public.nopk", 1), ("delete", "public.t", 1)]
    assert got[x["SP"]] == (("delete", "public.nopk", 1),)
    assert got[x["PART"]] == (("delete", "public.orders_eu", 2),)
    assert got[x["TR"]] == (("truncate", "public.nopk", 0),)
    assert got[x["DROP"]] == (("drop-table", "public.gone", 0),)
    assert got[x["SCHEMA"]] == (("drop-schema", "s.inside", 0),)
    assert x["ABORTED"] not in got
    [dropdb] = [xid for xid, changes in got.items() if changes == (("drop-database", None, 0),)]
    listed = {x[k] for k in ("D", "U", "TWO", "SP", "PART", "TR", "DROP", "SCHEMA")}
    assert set(got) == listed | {dropdb}
    repo = Repository.open(str(src.repo))
    report = find_mistakes(repo, MistakeRequest(conninfo=src.cluster.conninfo(), database="olddb"))
    assert [(m.xid, m.database) for m in report.mistakes] == [(dropdb, "olddb")]


def test_filters(src: Source) -> None:
    x = src.xids
    assert set(_scan(src, table="nopk")) == {x["TWO"], x["SP"], x["TR"]}
    assert set(_scan(src, kinds=frozenset({ChangeKind.UPDATE}))) == {x["U"]}
    assert set(_scan(src, xid=x["TWO"])) == {x["TWO"]}
    everything = _scan(src)
    assert set(_scan(src, min_rows=3)) == {x["D"], x["TR"], x["DROP"], x["SCHEMA"]} | {
        xid for xid, c in everything.items() if c[0][0] == "drop-database"
    }
    assert set(_scan(src, database="postgres")) == {
        xid for xid, c in everything.items() if c[0][0] != "drop-database"
    }


def test_the_largest_of_what_the_limit_leaves_out_are_shown(src: Source) -> None:
    """The newest one is listed; of the older, a TRUNCATE or DROP first, then by rows,
    the older first among equals -- through the CLI too."""
    x = src.xids
    repo = Repository.open(str(src.repo))
    report = find_mistakes(repo, MistakeRequest(conninfo=src.cluster.conninfo(), limit=1))
    assert [m.changes[0].kind for m in report.mistakes] == [ChangeKind.DROP_DATABASE]
    assert report.omitted == 8
    assert [m.xid for m in report.largest_omitted] == [x["TR"], x["DROP"], x["SCHEMA"], x["D"],
                                                       x["U"]]  # fmt: skip
    r = run_pgsafe("--repo", str(src.repo), "mistakes", "-d", src.cluster.conninfo(),
                   "--limit", "2", "--kind", "delete")  # fmt: skip
    assert r.returncode == 0, r.stderr
    head, largest = r.stdout.split("the largest of them")
    assert "2 older one(s) not shown" in head and f" {x['PART']} " in head
    assert f" {x['D']} " in largest and f"undo {x['D']} -d " in largest
    assert largest.index(f" {x['D']} ") < largest.index(f" {x['TWO']} ")


def test_small_batches_read_the_same(src: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2 segments (each starting with the last one of the batch before, the
    next one fetched while this one is read) find what one batch finds."""
    whole = _scan(src)
    repo = Repository.open(str(src.repo))
    report = find_mistakes(repo, MistakeRequest())
    assert report.segments >= 4  # more than one batch of 2
    monkeypatch.setattr(segments, "BATCH", 2)
    assert _scan(src) == whole


def test_cli_json(src: Source) -> None:
    r = run_pgsafe("--repo", str(src.repo), "mistakes", "-d", src.cluster.conninfo(), "--json",
                   "--kind", "delete", "--min-rows", "4")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    [m] = doc["mistakes"]
    assert m["xid"] == src.xids["D"] and m["rows"] == 4
    assert m["undo"].startswith(f"pgsafe --repo {src.repo} undo {src.xids['D']} -d ")
    assert "dbname=postgres" in m["undo"] and m["database"] == "postgres"
    assert doc["window"]["segments"] >= 1 and doc["omitted"] == 0


def test_pg_waldump_through_a_spool_file(src: Source, tmp_path: Path) -> None:
    """The spool (what a scan reads through) gives pg_waldump's output as the pipe does,
    is removed after, and a reader that stops early leaves no pg_waldump running."""
    wal = src.cluster.datadir / "pg_wal"
    names = sorted(n for n in os.listdir(wal) if len(n) == 24 and n.isalnum())
    first, last = names[0], names[-1]
    with dump(str(wal), first, last, major=src.cluster.major) as d:
        piped = "".join(d.blocks)
    spool = str(tmp_path / "out")
    with dump(str(wal), first, last, major=src.cluster.major, spool=spool) as d:
        spooled = "".join(d.blocks)
    assert spooled == piped and "rmgr: Heap" in piped and not os.path.exists(spool)
    d.check()
    with dump(str(wal), first, last, major=src.cluster.major, spool=spool) as d:
        next(d.blocks)
        d.stop()
    assert d.exited is not None and not os.path.exists(spool)
    d.check()  # stopped: how it ended is moot
