"""Pagila through every logical format: dump, restore into a new database, verify.

Real PostgreSQL, real pgsafe CLI processes; the proof is pagila's own fingerprint
query giving the expected output after the roundtrip."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.pg.programs import find_program, program_version
from tests.conftest import (
    PAGILA,
    Result,
    dumps_rejected_reason,
    pagila_fingerprint,
    psql_exec,
    query,
    run_pgsafe,
    server_tool,
    skip_if_dumps_rejected,
)

EXPECTED = (PAGILA / "fingerprint.expected.txt").read_text()


@pytest.fixture
def pagila(pg: LocalCluster, pagila_template: str, request: pytest.FixtureRequest) -> str:
    name = "pg_" + str(request.node.name).replace("[", "_").replace("]", "").replace("-", "_")[:40]
    psql_exec(pg.conninfo(), f'DROP DATABASE IF EXISTS "{name}"')
    psql_exec(pg.conninfo(), f'CREATE DATABASE "{name}" TEMPLATE {pagila_template}')
    return name


def dump(repo: Path, conninfo: str, *args: str) -> dict[str, object]:
    r = run_pgsafe("--repo", str(repo), "dump", "-d", conninfo, "--json", *args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


@skip_if_dumps_rejected()
@pytest.mark.parametrize("fmt", ["custom", "plain", "directory"])
def test_pagila_roundtrip_each_format(pg: LocalCluster, pagila: str, repo: Path, fmt: str) -> None:
    extra = ["-j", "2"] if fmt == "directory" else []
    doc = dump(repo, pg.conninfo(pagila), "--format", fmt, *extra)
    assert doc["kind"] == "logical" and doc["status"] == "ok" and doc["format"] == fmt
    backup_id = str(doc["id"])
    assert backup_id.endswith(f"-{fmt}") and pagila.lower()[:10] in backup_id

    target = f"{pagila}_r"
    r = run_pgsafe(
        "--repo", str(repo), "restore", backup_id, "--create", "-d", pg.conninfo(target), "--json"
    )
    assert r.returncode == 0, r.stderr
    restored = json.loads(r.stdout)
    assert (
        restored["ok"] is True and len(restored["checks"]) == 22
    )  # 21 tables and the rental_by_category materialized view
    assert pagila_fingerprint(pg.conninfo(target)) == EXPECTED
    # the materialized view stays unpopulated, as pg_dump left it
    assert query(
        pg.conninfo(target),
        "SELECT ispopulated FROM pg_matviews WHERE matviewname='rental_by_category'",
    ) == [(False,)]
    # sequences come back at their values
    assert query(pg.conninfo(target), "SELECT last_value FROM public.payment_payment_id_seq") == [
        (32098,)
    ]

    v = run_pgsafe("--repo", str(repo), "verify", backup_id, "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    report = json.loads(v.stdout)
    assert report["id"] == backup_id and report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert "table public.rental" in names and all(c["ok"] for c in report["checks"])
    assert all({"name", "ok", "detail"} <= set(c) for c in report["checks"])

    listed = json.loads(run_pgsafe("--repo", str(repo), "list", "--json").stdout)
    (entry,) = [b for b in listed["backups"] if b["id"] == backup_id]
    for key in (
        "id",
        "kind",
        "database",
        "format",
        "started_at",
        "finished_at",
        "size_bytes",
        "status",
        "verified",
    ):
        assert key in entry
    assert entry["verified"]["ok"] is True and entry["size_bytes"] > 0


def test_show_json_and_contents(pg: LocalCluster, pagila: str, repo: Path) -> None:
    backup_id = str(dump(repo, pg.conninfo(pagila))["id"])
    r = run_pgsafe("--repo", str(repo), "show", backup_id, "--contents", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["id"] == backup_id and doc["database"] == pagila
    assert doc["fingerprint"][""]["public.actor"]["rows"] == 200
    assert any("TABLE DATA public rental" in line for line in doc["contents"])
    assert doc["objects"][0]["sha256"] and doc["objects"][0]["size"] > 0


def test_dump_all_restores_into_another_cluster(
    pg: LocalCluster, pagila: str, repo: Path, state_home: Path
) -> None:
    # the matrix's embedded servers borrow a newer major's clients, whose output they may
    # reject: then the restore is refused, and verify loads into the clients' own major
    refused = dumps_rejected_reason(creates_database=True)
    psql_exec(pg.conninfo(), "DROP ROLE IF EXISTS app_owner")
    psql_exec(pg.conninfo(), "CREATE ROLE app_owner LOGIN")
    psql_exec(
        pg.conninfo(pagila),
        "CREATE TABLE owned_by_app(x int); INSERT INTO owned_by_app "
        "SELECT generate_series(1, 10); ALTER TABLE owned_by_app OWNER TO app_owner",
    )
    doc = dump(repo, pg.conninfo(), "--all")
    assert doc["format"] == "all" and doc["database"] is None
    other = LocalCluster(state_home / "other-all", settings={"fsync": "off"})
    other.initdb()
    other.start()
    try:
        r = run_pgsafe("--repo", str(repo), "restore", str(doc["id"]), "-d", other.conninfo())
        if refused:
            _assert_refused_and_unchanged(r, pg.major, other, pagila)
        else:
            assert r.returncode == 0, r.stderr
            assert pagila_fingerprint(other.conninfo(pagila)) == EXPECTED
            assert query(
                other.conninfo(pagila),
                "SELECT tableowner FROM pg_tables WHERE tablename='owned_by_app'",
            ) == [("app_owner",)]
            # the same restore again is refused: the databases exist now
            again = run_pgsafe(
                "--repo", str(repo), "restore", str(doc["id"]), "-d", other.conninfo()
            )
            assert again.returncode == 2 and "already exist" in again.stderr
    finally:
        other.destroy()
    v = run_pgsafe("--repo", str(repo), "verify", str(doc["id"]))
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"table {pagila}/public.owned_by_app" in v.stdout
    # where this major rejects its clients' output, verify loads into theirs (installed)
    assert ("loaded into a PostgreSQL" in v.stdout) == bool(refused), v.stdout


def _assert_refused_and_unchanged(r: Result, major: int, other: LocalCluster, pagila: str) -> None:
    client = program_version(find_program("pg_restore", major))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"pg_restore {client} would load into a PostgreSQL {major} server" in r.stderr
    assert f"postgresql-client-{major}" in r.stderr
    # refused before anything ran: not even the roles
    assert query(other.conninfo(), "SELECT 1 FROM pg_roles WHERE rolname = 'app_owner'") == []
    databases = f"SELECT 1 FROM pg_database WHERE datname = '{pagila}'"
    assert query(other.conninfo(), databases) == []


@skip_if_dumps_rejected()
def test_export_is_readable_by_stock_tools(
    pg: LocalCluster, pagila: str, repo: Path, tmp_path: Path
) -> None:
    custom = str(dump(repo, pg.conninfo(pagila))["id"])
    plain = str(dump(repo, pg.conninfo(pagila), "--format", "plain")["id"])
    out_c, out_p = tmp_path / "c", tmp_path / "p"
    assert run_pgsafe("--repo", str(repo), "export", custom, str(out_c)).returncode == 0
    assert run_pgsafe("--repo", str(repo), "export", plain, str(out_p)).returncode == 0
    listing = subprocess.run(
        [server_tool("pg_restore"), "-l", str(out_c / f"{pagila}.dump")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TABLE DATA public payment_p2022_07" in listing
    target = f"{pagila}_from_sql"
    psql_exec(pg.conninfo(), f'CREATE DATABASE "{target}" TEMPLATE template0')
    subprocess.run(
        [
            server_tool("psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            pg.conninfo(target),
            "-f",
            str(out_p / f"{pagila}.sql"),
        ],
        check=True,
        capture_output=True,
    )
    assert pagila_fingerprint(pg.conninfo(target)) == EXPECTED
    assert (out_c / "README.txt").read_text().count("pg_restore") >= 1
    # never overwrites
    again = run_pgsafe("--repo", str(repo), "export", custom, str(out_c))
    assert again.returncode == 2 and "already exists" in again.stderr
