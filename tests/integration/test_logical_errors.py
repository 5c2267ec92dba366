"""Bad input gets one clear error line, a hint, exit 2, and nothing changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port
from tests.conftest import (
    Result,
    dumps_rejected_reason,
    psql_exec,
    query,
    run_pgsafe,
    skip_if_dumps_rejected,
)


@pytest.fixture(scope="module")
def shop(pg: LocalCluster) -> str:
    db = "shop_errors"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {db}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {db}")
    psql_exec(
        pg.conninfo(db),
        "CREATE TABLE orders(id int primary key, note text);"
        "INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 100) g;"
        'CREATE TABLE "My ""odd"" table"(id int primary key, "naïve col" text);'
        """INSERT INTO "My ""odd"" table" VALUES (1, 'x'), (2, 'y');"""
        'CREATE SCHEMA "Sales Dept"; CREATE TABLE "Sales Dept"."café ü"(v int);'
        """INSERT INTO "Sales Dept"."café ü" SELECT generate_series(1, 7);""",
    )
    return db


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("error:", "HINT:"))]


def assert_bad_input(r: Result, needle: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = error_lines(r.stderr)
    assert lines and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert any(ln.startswith("HINT:") for ln in lines), r.stderr
    assert "Traceback" not in r.stderr


def backups(repo: Path) -> list[str]:
    r = run_pgsafe("--repo", str(repo), "list", "--json")
    if r.returncode != 0:
        return []
    return [b["id"] for b in json.loads(r.stdout)["backups"]]


def test_unknown_backup_id(repo: Path, pg: LocalCluster, shop: str) -> None:
    assert run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(shop)).returncode == 0
    for cmd in (
        ["show", "20000101T000000Z-nope"],
        ["verify", "nope"],
        ["restore", "nope", "-d", pg.conninfo(shop)],
        ["export", "nope", "/tmp/x"],
    ):
        assert_bad_input(run_pgsafe("--repo", str(repo), *cmd), "no backup")


def test_unknown_table_changes_nothing(repo: Path, pg: LocalCluster, shop: str) -> None:
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(shop), "-t", "no_such_table")
    assert_bad_input(r, "no_such_table")
    assert not repo.exists() or backups(repo) == []
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(shop), "-T", "nope")
    assert_bad_input(r, "nope")


def test_unreachable_server_and_wrong_password(repo: Path, pg: LocalCluster) -> None:
    port = free_port()
    r = run_pgsafe("--repo", str(repo), "dump", "-d", f"host=127.0.0.1 port={port} dbname=x")
    assert_bad_input(r, "cannot connect")
    psql_exec(pg.conninfo(), "DROP ROLE IF EXISTS pw_user")
    psql_exec(pg.conninfo(), "CREATE ROLE pw_user LOGIN PASSWORD 'right-secret'")
    r = run_pgsafe(
        "--repo",
        str(repo),
        "dump",
        "-d",
        f"host=127.0.0.1 port={pg.port} user=pw_user dbname=postgres",
        env={"PGPASSWORD": "wrong-secret"},
    )
    assert_bad_input(r, "refused the credentials")
    assert "wrong-secret" not in r.stderr + r.stdout
    # and the right password works, without ever appearing in output
    ok = run_pgsafe(
        "--repo",
        str(repo),
        "dump",
        "-d",
        f"host=127.0.0.1 port={pg.port} user=pw_user dbname=postgres password=right-secret",
    )
    assert ok.returncode == 0, ok.stderr
    assert "right-secret" not in ok.stderr + ok.stdout
    stored = b"".join(p.read_bytes() for p in repo.rglob("*") if p.is_file())
    assert b"right-secret" not in stored


def test_restore_into_non_empty_database_is_refused(
    repo: Path, pg: LocalCluster, shop: str
) -> None:
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(shop), "--json")
    backup_id = json.loads(r.stdout)["id"]
    psql_exec(pg.conninfo(shop), "UPDATE orders SET note = 'changed' WHERE id = 1")
    r = run_pgsafe("--repo", str(repo), "restore", backup_id, "-d", pg.conninfo(shop))
    assert_bad_input(r, "not empty")
    assert query(pg.conninfo(shop), "SELECT note FROM orders WHERE id = 1") == [("changed",)]
    # --create into an existing database is refused too
    r = run_pgsafe("--repo", str(repo), "restore", backup_id, "--create", "-d", pg.conninfo(shop))
    assert_bad_input(r, "already exists")
    rejected = dumps_rejected_reason()
    if rejected:
        pytest.skip(rejected)
    # with --clean it goes through and the row is back
    r = run_pgsafe("--repo", str(repo), "restore", backup_id, "--clean", "-d", pg.conninfo(shop))
    assert r.returncode == 0, r.stderr
    assert query(pg.conninfo(shop), "SELECT note FROM orders WHERE id = 1") == [("n1",)]


def test_repository_not_writable(tmp_path: Path, pg: LocalCluster, shop: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = run_pgsafe("--repo", str(blocker / "repo"), "dump", "-d", pg.conninfo(shop))
    assert_bad_input(r, "repository")
    r = run_pgsafe("--repo", str(blocker), "dump", "-d", pg.conninfo(shop))
    assert_bad_input(r, "not a folder")
    assert blocker.read_text() == "not a folder"


def test_dump_no_repository_given(pg: LocalCluster, shop: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PGSAFE_REPO"}
    proc = subprocess.run(
        [sys.executable, "-m", "pgsafe", "dump", "-d", pg.conninfo(shop)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    assert proc.returncode == 2 and "--repo" in proc.stderr


@skip_if_dumps_rejected()
def test_odd_table_names_roundtrip(repo: Path, pg: LocalCluster, shop: str) -> None:
    r = run_pgsafe(
        "--repo",
        str(repo),
        "dump",
        "-d",
        pg.conninfo(shop),
        "--json",
        "-t",
        'My "odd" table',
        "-t",
        "Sales Dept.café ü",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    shown = json.loads(run_pgsafe("--repo", str(repo), "show", doc["id"], "--json").stdout)
    assert set(shown["fingerprint"][""]) == {'public.My "odd" table', "Sales Dept.café ü"}
    target = "shop_odd_copy"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    r = run_pgsafe(
        "--repo", str(repo), "restore", doc["id"], "--create", "-d", pg.conninfo(target), "--json"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    assert query(pg.conninfo(target), 'SELECT count(*) FROM "Sales Dept"."café ü"') == [(7,)]
    assert query(pg.conninfo(target), "SELECT to_regclass('public.orders')") == [(None,)]
    # single-table restore by its exact name, after the table was dropped
    psql_exec(pg.conninfo(target), 'DROP TABLE "My ""odd"" table"')
    r = run_pgsafe(
        "--repo", str(repo), "restore", doc["id"], "-d", pg.conninfo(target), "-t", 'My "odd" table'
    )
    assert r.returncode == 0, r.stderr
    assert query(pg.conninfo(target), 'SELECT "naïve col" FROM "My ""odd"" table" ORDER BY id') == [
        ("x",),
        ("y",),
    ]
    # a table not in this backup is refused by name
    r = run_pgsafe(
        "--repo", str(repo), "restore", doc["id"], "-d", pg.conninfo(target), "-t", "orders"
    )
    assert_bad_input(r, "not in backup")


def test_dump_killed_halfway_leaves_no_backup(repo: Path, pg: LocalCluster) -> None:
    db = "big_for_kill"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {db}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {db}")
    psql_exec(
        pg.conninfo(db),
        "CREATE TABLE t AS SELECT g, md5(g::text) || md5((g+1)::text) AS v"
        " FROM generate_series(1, 1500000) g",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgsafe", "--repo", str(repo), "dump", "-d", pg.conninfo(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    partial: list[Path] = []
    while time.monotonic() < deadline and not partial:
        # the dump's own object, not the repository marker written just before it
        partial = [p for p in repo.rglob(".tmp-*.dump*") if p.stat().st_size > 0]
        time.sleep(0.01)
    assert partial, "the dump never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert backups(repo) == []
    listed = run_pgsafe("--repo", str(repo), "list")
    assert listed.returncode == 0 and "no backups" in listed.stdout
    again = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(db), "--json")
    assert again.returncode == 0, again.stderr
    assert backups(repo) == [json.loads(again.stdout)["id"]]
    psql_exec(pg.conninfo(), f"DROP DATABASE {db}")


def test_flipped_byte_is_named_by_verify(repo: Path, pg: LocalCluster, shop: str) -> None:
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(shop), "--json")
    backup_id = json.loads(r.stdout)["id"]
    (obj,) = [p for p in repo.rglob("*.dump.zst")]
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    obj.write_bytes(bytes(data))
    v = run_pgsafe("--repo", str(repo), "verify", backup_id, "--json")
    assert v.returncode == 3, v.stdout + v.stderr
    report = json.loads(v.stdout)
    assert report["ok"] is False
    bad = [c for c in report["checks"] if not c["ok"]]
    assert bad[0]["name"] == f"object {obj.name}" and "checksum mismatch" in bad[0]["detail"]
    text = run_pgsafe("--repo", str(repo), "verify", backup_id)
    assert text.returncode == 3 and f"✗ object {obj.name}" in text.stdout
    # a restore of the damaged backup is refused as corruption, and creates nothing
    target = "shop_from_damaged"
    r = run_pgsafe("--repo", str(repo), "restore", backup_id, "--create", "-d", pg.conninfo(target))
    # (a server that rejects its client tools' output refuses first: bad input, exit 2)
    assert r.returncode == (2 if dumps_rejected_reason() else 3), r.stderr
    assert query(pg.conninfo(), f"SELECT 1 FROM pg_database WHERE datname='{target}'") == []
    # the catalog remembers the failed verification
    listed = json.loads(run_pgsafe("--repo", str(repo), "list", "--json").stdout)
    assert listed["backups"][0]["verified"]["ok"] is False


@skip_if_dumps_rejected()
def test_table_subset_backup_restores_into_an_empty_database(
    repo: Path, pg: LocalCluster, pagila_template: str
) -> None:
    """pg_dump -t follows no dependencies: pgsafe adds the tables' default sequences,
    leaves out foreign keys to tables outside the subset, and proves the data."""
    src = pg.conninfo(pagila_template)
    r = run_pgsafe(
        "--repo", str(repo), "dump", "-d", src, "-t", "rental", "-t", "payment_p2022_07", "--json"
    )
    assert r.returncode == 0, r.stderr
    backup_id = json.loads(r.stdout)["id"]
    target = "rentals_only"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    r = run_pgsafe(
        "--repo", str(repo), "restore", backup_id, "--create", "-d", pg.conninfo(target), "--json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and len(doc["checks"]) == 2
    assert any("rental_customer_id_fkey" in w for w in doc["warnings"])
    # the serial default works: its sequence came along, at the dumped value
    psql_exec(
        pg.conninfo(target),
        "INSERT INTO rental (rental_date, inventory_id, customer_id,"
        " staff_id) VALUES (now(), 1, 1, 1)",
    )
    assert query(pg.conninfo(target), "SELECT max(rental_id) FROM rental") == [(16050,)]
    v = run_pgsafe("--repo", str(repo), "verify", backup_id)
    assert v.returncode == 0, v.stdout


def test_expire_removes_what_an_interrupted_dump_left(repo: Path, pg: LocalCluster) -> None:
    ok = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(), "--json")
    assert ok.returncode == 0, ok.stderr
    leftover = repo / "main" / "backups" / "20200101T000000Z-crashed-custom"
    leftover.mkdir(parents=True)
    (leftover / "crashed.dump.zst").write_bytes(b"half a dump")
    os.utime(leftover / "crashed.dump.zst", (0, 0))
    dry = run_pgsafe("--repo", str(repo), "expire", "--keep-last", "5", "--dry-run", "--json")
    assert json.loads(dry.stdout)["incomplete"] == [leftover.name]
    assert leftover.exists()
    run_pgsafe("--repo", str(repo), "expire", "--keep-last", "5")
    assert not leftover.exists()
    assert backups(repo) == [json.loads(ok.stdout)["id"]]


def test_verify_of_a_dump_of_the_postgres_database(repo: Path, pg: LocalCluster) -> None:
    psql_exec(pg.conninfo(), "CREATE TABLE IF NOT EXISTS in_postgres AS SELECT 1 AS x")
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo("postgres"), "--json")
    assert r.returncode == 0, r.stderr
    v = run_pgsafe("--repo", str(repo), "verify", json.loads(r.stdout)["id"])
    assert v.returncode == 0, v.stdout + v.stderr
    assert "table public.in_postgres" in v.stdout
    psql_exec(pg.conninfo(), "DROP TABLE in_postgres")
