"""Across PostgreSQL majors: how users upgrade, and what must refuse.

A logical backup of an older major restores into the newer server under test and its
content fingerprints equal the source's; a physical backup of the older major refuses to
recover where that major's server programs are not installed (exit 2, nothing written).
The older server comes from ``$PGSAFE_TEST_OLDER_PG_BINDIR`` (its bin folder: initdb,
pg_ctl, postgres); scripts/pg-matrix.sh names npm's embedded 15 in the 17 and 18 chroots
(15 -> 17, 15 -> 18) and an embedded 13 on the host.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.pg.programs import find_program, installed_major, program_version
from pgsafe.physical.archiving import archive_settings
from pgsafe.repo.repository import Repository
from tests.conftest import (
    load_pagila,
    pagila_fingerprint,
    psql_exec,
    query,
    reachable_tmpdir,
    run_pgsafe,
)

OLDER = os.environ.get("PGSAFE_TEST_OLDER_PG_BINDIR", "")


def _older_major() -> int:
    if not OLDER:
        pytest.skip(
            "no older PostgreSQL server to upgrade from: set PGSAFE_TEST_OLDER_PG_BINDIR "
            "to its bin folder (scripts/pg-matrix.sh does)"
        )
    initdb = Path(OLDER) / "initdb"
    if not initdb.is_file():
        pytest.skip(f"PGSAFE_TEST_OLDER_PG_BINDIR={OLDER} holds no initdb")
    older, newer = program_version(str(initdb)), installed_major()
    if older >= newer:
        pytest.skip(f"the older server is PostgreSQL {older}, not older than {newer}")
    return older


@pytest.fixture(scope="module")
def older(state_home: Path) -> Iterator[tuple[LocalCluster, Path]]:
    """A running cluster of the older major (archiving into a repository), its base folder.

    PGSAFE_PG_BINDIR lists the default server's folder first (it stays the default
    for pgsafe's own processes), then the older server's.
    """
    major = _older_major()
    default_bin = str(Path(find_program("initdb")).parent)
    before = os.environ.get("PGSAFE_PG_BINDIR")
    os.environ["PGSAFE_PG_BINDIR"] = os.pathsep.join(
        p for p in (default_bin, OLDER, before or "") if p
    )
    find_program.cache_clear()
    base = reachable_tmpdir("pgsafe-cross-")
    repo = Repository.open(str(base / "repo"), "main", create=True, owner=repository_owner())
    c = LocalCluster(base / "old", major=major, settings={"fsync": "off"})
    c.settings.update(archive_settings(repo, state_home))
    c.initdb()
    c.start()
    try:
        yield c, base
    finally:
        c.destroy()
        shutil.rmtree(base, ignore_errors=True)
        if before is None:
            os.environ.pop("PGSAFE_PG_BINDIR", None)
        else:
            os.environ["PGSAFE_PG_BINDIR"] = before
        find_program.cache_clear()


def test_logical_backup_of_an_older_major_restores_into_the_newer_server(
    older: tuple[LocalCluster, Path], pg: LocalCluster
) -> None:
    old, base = older
    assert old.major < pg.major
    client = program_version(find_program("pg_restore", pg.major))
    if client > pg.major:  # an embedded server of the matrix, with a newer major's clients
        pytest.skip(
            f"pg_restore {client}'s output (SET transaction_timeout, ...) does not load into "
            f"the PostgreSQL {pg.major} server under test: a dump restores into its own "
            "major or newer"
        )
    load_pagila(old, "shop")
    expected = pagila_fingerprint(old.conninfo("shop"))
    repo = str(base / "logical")
    dumped = run_pgsafe("--repo", repo, "dump", "-d", old.conninfo("shop"), "--json")
    assert dumped.returncode == 0, dumped.stderr
    doc = json.loads(dumped.stdout)
    assert doc["pg_version"].startswith(f"{old.major}.")
    target = f"shop_from_{old.major}"
    psql_exec(pg.conninfo(), f'DROP DATABASE IF EXISTS "{target}"')
    restored = run_pgsafe(
        "--repo", repo, "restore", doc["id"], "--create", "-d", pg.conninfo(target), "--json"
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = json.loads(restored.stdout)
    assert report["ok"] is True and report["checks"], report
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert pagila_fingerprint(pg.conninfo(target)) == expected
    ((version,),) = query(pg.conninfo(target), "SHOW server_version_num")
    assert int(version) // 10000 == pg.major


def test_physical_backup_refuses_to_recover_without_its_major(
    older: tuple[LocalCluster, Path],
) -> None:
    old, base = older
    repo = str(base / "repo")  # the one the older server archives into
    # the stdout stream, not server-side compression: npm's embedded builds have no zstd
    cfg = base / "plain.toml"
    cfg.write_text('compression = "none"\n')
    where = ["--config", str(cfg), "--repo", repo]
    backup = run_pgsafe(*where, "backup", "-d", old.conninfo(), "--json")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    pgdata = base / "recovered"
    # the older major's folder unlisted: only the newer server's programs are found
    env = {"PGSAFE_PG_BINDIR": str(Path(find_program("initdb", installed_major())).parent)}
    r = run_pgsafe(*where, "recover", "--pgdata", str(pgdata), "--latest", env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"the backup is of PostgreSQL {old.major}" in r.stderr
    assert f"postgresql-{old.major}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not pgdata.exists(), "nothing written"
