"""Planner statistics in a logical backup (``pg_dump --statistics``, PostgreSQL 18+).

On 18 a dump carries them by default, ``show`` says so, and a restore into a new
database has the original's statistics before any ``ANALYZE`` ran; ``--no-statistics``
leaves them out.  Before 18 a dump has none and ``--statistics`` is refused (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.logical.pgdump import STATISTICS_MAJOR
from tests.conftest import psql_exec, query, run_pgsafe

NEEDS_18 = f"pg_dump --statistics exists from PostgreSQL {STATISTICS_MAJOR}"


@pytest.fixture(scope="module")
def analyzed(pg: LocalCluster) -> str:
    db = "stats_src"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {db}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {db}")
    psql_exec(
        pg.conninfo(db),
        "CREATE TABLE orders(id int PRIMARY KEY, status text);"
        "INSERT INTO orders SELECT g, CASE WHEN g % 100 = 0 THEN 'open' ELSE 'done' END"
        " FROM generate_series(1, 5000) g;"
        "ANALYZE orders;",
    )
    return db


def _dump(repo: Path, pg: LocalCluster, db: str, *flags: str) -> dict[str, object]:
    r = run_pgsafe("--repo", str(repo), "--json", "dump", "-d", pg.conninfo(db), *flags)
    assert r.returncode == 0, r.stderr
    backup_id = json.loads(r.stdout)["id"]
    r = run_pgsafe("--repo", str(repo), "--json", "show", backup_id)
    assert r.returncode == 0, r.stderr
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def _restore_new(repo: Path, pg: LocalCluster, backup_id: str, target: str) -> None:
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    r = run_pgsafe("--repo", str(repo), "restore", backup_id, "-d", pg.conninfo(target), "--create")
    assert r.returncode == 0, r.stderr


def _stats(pg: LocalCluster, db: str) -> tuple[int, int, bool]:
    """(pg_stats rows of orders, orders' reltuples, whether any ANALYZE ran there)."""
    n = query(pg.conninfo(db), "SELECT count(*) FROM pg_stats WHERE tablename = 'orders'")
    tuples = query(
        pg.conninfo(db), "SELECT reltuples::bigint FROM pg_class WHERE relname = 'orders'"
    )
    analyzed = query(
        pg.conninfo(db),
        "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL"
        " FROM pg_stat_user_tables WHERE relname = 'orders'",
    )
    return int(n[0][0]), int(tuples[0][0]), bool(analyzed[0][0])


def test_statistics_carried_and_restored(repo: Path, pg: LocalCluster, analyzed: str) -> None:
    if pg.major < STATISTICS_MAJOR:
        pytest.skip(NEEDS_18)
    doc = _dump(repo, pg, analyzed)
    options = doc["options"]
    assert isinstance(options, dict) and options["statistics"] is True
    text = run_pgsafe("--repo", str(repo), "show", str(doc["id"]))
    assert "statistics  carried" in text.stdout, text.stdout
    _restore_new(repo, pg, str(doc["id"]), "stats_with")
    rows, tuples, analyzed_there = _stats(pg, "stats_with")
    assert not analyzed_there  # what pg_stats holds came from the backup
    assert rows >= 2 and tuples == 5000, (rows, tuples)


def test_no_statistics_leaves_them_out(repo: Path, pg: LocalCluster, analyzed: str) -> None:
    if pg.major < STATISTICS_MAJOR:
        pytest.skip(NEEDS_18)
    doc = _dump(repo, pg, analyzed, "--no-statistics")
    options = doc["options"]
    assert isinstance(options, dict) and options["statistics"] is False
    _restore_new(repo, pg, str(doc["id"]), "stats_without")
    rows, _, analyzed_there = _stats(pg, "stats_without")
    if not analyzed_there:  # autovacuum may analyze the new table meanwhile
        assert rows == 0, rows  # (reltuples is set anyway, by CREATE INDEX)


def test_before_18_no_statistics_and_refused(repo: Path, pg: LocalCluster, analyzed: str) -> None:
    if pg.major >= STATISTICS_MAJOR:
        pytest.skip(f"PostgreSQL {pg.major} has pg_dump --statistics")
    doc = _dump(repo, pg, analyzed)
    options = doc["options"]
    assert isinstance(options, dict) and options["statistics"] is False
    text = run_pgsafe("--repo", str(repo), "show", str(doc["id"]))
    assert "statistics  not carried: run ANALYZE" in text.stdout, text.stdout
    before = run_pgsafe("--repo", str(repo), "--json", "list").stdout
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(analyzed), "--statistics")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert f"needs PostgreSQL {STATISTICS_MAJOR}" in r.stderr and "HINT:" in r.stderr
    assert "Traceback" not in r.stderr
    assert run_pgsafe("--repo", str(repo), "--json", "list").stdout == before


def test_statistics_with_schema_only_refused(repo: Path, pg: LocalCluster, analyzed: str) -> None:
    r = run_pgsafe(
        "--repo", str(repo), "dump", "-d", pg.conninfo(analyzed), "--statistics", "--data-only"
    )
    assert r.returncode == 2 and "--statistics" in r.stderr and "HINT:" in r.stderr, r.stderr
