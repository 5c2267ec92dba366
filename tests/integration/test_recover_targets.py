"""PITR to every kind of target on one archiving cluster; each recovery is checked
against the rows it must and must not contain.

History of the source (one row per transaction, in table ``items``)::

    base backup | id 1 | id 2 (xid X2) | mark 'after2' | id 3 -> LSN L3 | id 4 | T4 | id 5
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from pgsafe.wal import names
from tests.archiving import Archiving, archiving_cluster
from tests.conftest import psql_exec, query, run_pgsafe


@dataclass
class Source:
    cluster: LocalCluster
    repo: Path
    base: Path
    xid2: int
    lsn3: str
    t4: str
    before_backup: str


@pytest.fixture(scope="module")
def src(state_home: Path) -> Iterator[Source]:
    with archiving_cluster("pgsafe-rec-", state_home) as a:
        yield _load(a)


def _load(a: Archiving) -> Source:
    """The history the targets name: a backup, then rows, a mark, an xid, an LSN, a time."""
    ci, repo, repo_path = a.conninfo, a.repo, a.repo_path
    psql_exec(
        ci, "CREATE TABLE items (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())"
    )
    before = str(query(ci, "SELECT clock_timestamp()")[0][0])
    time.sleep(0.2)
    a.backup()
    psql_exec(ci, "INSERT INTO items (id) VALUES (1)")
    switch_and_wait(ci, repo, timeout=60)  # one more segment: a gap can be made in the middle
    with psycopg.connect(ci) as conn:  # one transaction: its xid is the target
        conn.execute("INSERT INTO items (id) VALUES (2)")
        row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        xid2 = int(row[0])
        conn.commit()
    r = run_pgsafe("--repo", str(repo_path), "mark", "after2", "-d", ci)
    assert r.returncode == 0, r.stderr
    psql_exec(ci, "INSERT INTO items (id) VALUES (3)")
    lsn3 = str(query(ci, "SELECT pg_current_wal_insert_lsn()")[0][0])
    psql_exec(ci, "INSERT INTO items (id) VALUES (4)")
    time.sleep(0.3)
    t4 = str(query(ci, "SELECT clock_timestamp()")[0][0])
    time.sleep(0.3)
    psql_exec(ci, "INSERT INTO items (id) VALUES (5)")
    switch_and_wait(ci, repo, timeout=60)
    return Source(a.cluster, repo_path, a.base, xid2, lsn3, t4, before)


def recover(s: Source, name: str, *args: str) -> tuple[dict[str, object], LocalCluster]:
    pgdata = s.base / name
    r = run_pgsafe("--repo", str(s.repo), "recover", "--pgdata", str(pgdata), "--start",
                   "--json", *args)  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc, LocalCluster(pgdata, port=int(doc["port"]))


def ids(c: LocalCluster) -> list[int]:
    return [int(r[0]) for r in query(c.conninfo(), "SELECT id FROM items ORDER BY id")]


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("xid", lambda s: ["--xid", str(s.xid2), "--promote"], [1, 2]),
        ("xid_excl", lambda s: ["--xid", str(s.xid2), "--exclusive", "--promote"], [1]),
        ("named", lambda s: ["--name", "after2", "--pause"], [1, 2]),
        ("lsn", lambda s: ["--lsn", s.lsn3, "--promote"], [1, 2, 3]),
        ("time", lambda s: ["--time", s.t4, "--promote"], [1, 2, 3, 4]),
        ("latest", lambda s: ["--latest"], [1, 2, 3, 4, 5]),
        ("immediate", lambda s: ["--immediate", "--promote"], []),
    ],
)
def test_recover_to_target(
    src: Source, name: str, args: Callable[[Source], list[str]], expected: list[int]
) -> None:
    doc, c = recover(src, name, *args(src))
    try:
        assert ids(c) == expected
        assert doc["ok"] is True and doc["reached"] is not None
        reached = doc["reached"]
        assert isinstance(reached, dict)
        if name == "named":
            assert reached["in_recovery"] is True and doc["state"] == "paused"
        else:
            assert doc["state"] == "promoted" and reached["in_recovery"] is False
            psql_exec(c.conninfo(), "INSERT INTO items (id) VALUES (100)")  # read-write
        if expected:
            assert reached["last_transaction_time"] is not None
    finally:
        c.destroy()


def test_checks_pass_and_fail(src: Source) -> None:
    pgdata = src.base / "checks"
    r = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata), "--start",
                   "--time", src.t4, "--json",
                   "--check", "SELECT count(*) = 4 FROM items",
                   "--check", "SELECT max(at) <= '" + src.t4 + "'::timestamptz FROM items",
                   "--check", "SELECT count(*) = 5 FROM items")  # fmt: skip
    try:
        assert r.returncode == 3
        doc = json.loads(r.stdout)
        assert [c["ok"] for c in doc["checks"]] == [True, True, False]
        assert doc["ok"] is False and doc["target"]["kind"] == "time"
        assert "check(s) failed" in r.stderr
    finally:
        LocalCluster(pgdata).destroy()


def test_refusals_touch_nothing(src: Source) -> None:
    pgdata = src.base / "refused"
    cases = [
        (["--time", src.before_backup], 2, "before the earliest recoverable time"),
        (["--time", "2999-01-01 00:00:00+00"], 2, "after the last archived commit"),
        (["--time", "yesterday at noon"], 2, "malformed time"),
        (["--lsn", "FF/0"], 2, "after the end of the archived WAL"),
        (["--latest", "--pause"], 2, "cannot pause"),
        (["--xid", "12", "--lsn", "0/1"], 2, "exactly one target"),
    ]
    for args, code, text in cases:
        r = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata), *args)
        assert r.returncode == code, (args, r.stderr)
        assert text in r.stderr, (args, r.stderr)
        assert not pgdata.exists()
    r = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata),
                   "--time", "2999-01-01 00:00:00+00")  # fmt: skip
    assert "recoverable window is" in r.stderr
    r = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata), "--latest",
                   "--dry-run", "--json")  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "planned"
    assert not pgdata.exists()
    pgdata.mkdir()
    (pgdata / "precious").write_text("keep me")
    r = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata), "--latest")
    assert r.returncode == 2 and "not empty" in r.stderr
    assert (pgdata / "precious").read_text() == "keep me"


def test_missing_segment_named_by_info_and_refused(src: Source) -> None:
    damaged = src.base / "damaged"
    shutil.copytree(src.repo, damaged)
    repo = Repository.open(str(damaged), "main")
    info = json.loads(run_pgsafe("--repo", str(damaged), "info", "--json").stdout)
    stop = names.parse_lsn(info["timelines"][0]["backups"][0]["stop_lsn"])
    segs = sorted(
        n for k in repo.storage.list("main/wal") if (n := k.rsplit("/", 1)[1][:-4]).isalnum()
    )
    after = [n for n in segs if names.segment_number(n) > names.lsn_segment(stop - 1)]
    assert len(after) >= 2
    name = after[0]  # after the backup, before the last archived segment
    victim = f"main/wal/{name[:16]}/{name}.zst"
    repo.storage.delete(victim)
    r = run_pgsafe("--repo", str(damaged), "info", "--json")
    gaps = json.loads(r.stdout)["timelines"][0]["gaps"]
    assert [g["first"] for g in gaps] == [name]
    text = run_pgsafe("--repo", str(damaged), "info").stdout
    assert f"GAP: missing {name}" in text
    pgdata = src.base / "gap"
    r = run_pgsafe("--repo", str(damaged), "recover", "--pgdata", str(pgdata), "--latest")
    assert r.returncode == 1 and name in r.stderr and "nothing was written" in r.stderr
    assert not pgdata.exists()


def test_info_reports_window_and_marks(src: Source) -> None:
    r = run_pgsafe("--repo", str(src.repo), "info", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    tl = doc["timelines"][0]
    assert tl["timeline"] == 1 and len(tl["backups"]) == 1 and tl["gaps"] == []
    assert tl["recoverable_from"] == tl["backups"][0]["finished_at"]
    assert tl["recoverable_to"] > src.t4.replace(" ", "T")[:19]
    assert [m["name"] for m in doc["marks"]] == ["after2"]
    r = run_pgsafe("--repo", str(src.repo), "mark", "after2", "-d", src.cluster.conninfo())
    assert r.returncode == 2 and "already exists" in r.stderr
