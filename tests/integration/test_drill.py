"""Restore drills of physical backups, and expiry of base backups and WAL, against a
real archiving cluster."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.logical import materialize as mat
from pgsafe.physical.switch import switch_and_wait
from pgsafe.recovery.prove import TAR_MAJOR, verify_archive
from pgsafe.repo.repository import Repository
from tests.archiving import archiving_cluster
from tests.conftest import psql_exec, query, reachable_tmpdir, run_pgsafe

ARCHIVE_CHECK = "pg_verifybackup of the stored archive"
RESTORE_CHECK = "restore into a throwaway data directory"


@dataclass
class Src:
    cluster: LocalCluster
    repo: Path
    base: Path
    first: str
    second: str


@pytest.fixture(scope="module")
def src(state_home: Path) -> Iterator[Src]:
    with archiving_cluster("pgsafe-drill-", state_home) as a:
        ci = a.conninfo
        psql_exec(ci, "CREATE TABLE ledger (id int PRIMARY KEY, amount int NOT NULL)")
        psql_exec(ci, "INSERT INTO ledger SELECT g, g FROM generate_series(1, 1000) g")
        first = a.backup()
        psql_exec(ci, "INSERT INTO ledger SELECT g, g FROM generate_series(1001, 2000) g")
        switch_and_wait(ci, a.repo, timeout=60)
        second = a.backup()
        psql_exec(ci, "INSERT INTO ledger SELECT g, g FROM generate_series(2001, 3000) g")
        switch_and_wait(ci, a.repo, timeout=60)
        yield Src(a.cluster, a.repo_path, a.base, first, second)


def test_drill_of_a_good_backup_passes_and_is_recorded(src: Src) -> None:
    r = run_pgsafe(
        "--repo",
        str(src.repo),
        "drill",
        src.second,
        "--json",
        "--check",
        "SELECT count(*) = 3000 FROM ledger",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    for name in (
        "pg_verifybackup",
        "recovery",
        "pg_amcheck",
        "fingerprints",
        "check SELECT count(*) = 3000 FROM ledger",
    ):
        assert checks[name]["ok"] is True, checks
    assert doc["fingerprint"]["postgres"]["public.ledger"]["rows"] == 3000
    assert "from the prefetch spool" in checks["recovery"]["detail"]  # how the WAL came
    archive = checks.get(ARCHIVE_CHECK)
    if src.cluster.major >= TAR_MAJOR:  # proven before the restore, by PostgreSQL's tool
        assert archive is not None and archive["ok"] is True, checks
        assert list(checks).index(ARCHIVE_CHECK) < list(checks).index(RESTORE_CHECK)
    else:
        assert archive is None, checks
    listed = json.loads(run_pgsafe("--repo", str(src.repo), "list", "--json").stdout)
    (entry,) = [b for b in listed["backups"] if b["id"] == src.second]
    assert entry["verified"]["ok"] is True and entry["verified"]["kind"] == "drill"
    # a failing check fails the drill
    bad = run_pgsafe(
        "--repo", str(src.repo), "drill", src.second, "--check", "SELECT count(*) = 1 FROM ledger"
    )
    assert bad.returncode == 3 and "✗ check" in bad.stdout


def _damage_a_data_file(repo_path: Path, backup_id: str, relpath: str) -> None:
    """Change one byte of a relation file inside the stored base backup, and make the
    catalog agree with the damaged object (as if the damage happened before storing)."""
    repo = Repository.open(str(repo_path), "main")
    m = repo.load(backup_id)
    obj = m.object("data")
    assert obj is not None
    raw = b"".join(mat.chunks(repo, m, obj))
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tin,
        tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tout,
    ):
        for member in tin:
            f = tin.extractfile(member) if member.isfile() else None
            data = f.read() if f is not None else None
            if member.name == relpath and data:
                b = bytearray(data)
                b[8192 - 100] ^= 0xFF  # inside the first page's tuples
                data = bytes(b)
            tout.addfile(member, io.BytesIO(data) if data is not None else None)
    stored = b"".join(repo.encoder().encode([out.getvalue()]))
    key = repo.object_key(backup_id, obj.name)
    repo.storage.put(key, [stored], overwrite=True)
    obj.size, obj.sha256 = len(stored), hashlib.sha256(stored).hexdigest()
    repo.save(m)


def test_drill_of_a_damaged_backup_fails_and_names_it(src: Src) -> None:
    relpath = str(query(src.cluster.conninfo(), "SELECT pg_relation_filepath('ledger')")[0][0])
    _damage_a_data_file(src.repo, src.first, relpath)
    r = run_pgsafe("--repo", str(src.repo), "drill", src.first, "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    failed = [c for c in doc["checks"] if not c["ok"]]
    on_tar = src.cluster.major >= TAR_MAJOR
    assert failed and failed[0]["name"] == (ARCHIVE_CHECK if on_tar else "pg_verifybackup")
    assert relpath in failed[0]["detail"]
    if on_tar:  # caught in the stored archive: nothing was restored
        assert RESTORE_CHECK not in {c["name"] for c in doc["checks"]}
    text = run_pgsafe("--repo", str(src.repo), "drill", src.first)
    assert text.returncode == 3 and f"✗ {failed[0]['name']}" in text.stdout


def test_stored_archive_verified_on_18_lz4_age(
    pg: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_verifybackup -F t reads the archive as pgsafe stored it, decrypted but still
    compressed by pgsafe's own lz4 (not by the server): the formats are PostgreSQL's."""
    from tests.integration.test_physical_codecs import make_identity

    if pg.major < TAR_MAJOR:
        pytest.skip(f"pg_verifybackup reads tar-format backups from PostgreSQL {TAR_MAJOR}")
    base = reachable_tmpdir("pgsafe-tar-verify-")
    try:
        key = make_identity(base)
        cfg = base / "pgsafe.toml"
        cfg.write_text(
            f'compression = "lz4"\nencryption = "age"\nage_recipients = ["{key.public}"]\n'
        )
        repo_path = base / "repo"
        where = ["--config", str(cfg), "--repo", str(repo_path)]
        r = run_pgsafe(*where, "--json", "backup", "-d", pg.conninfo())
        assert r.returncode == 0, r.stderr
        monkeypatch.setenv("PGSAFE_AGE_IDENTITY_FILE", str(key.path))
        repo = Repository.open(str(repo_path), "main")
        m = repo.load(json.loads(r.stdout)["id"])
        data = m.object("data")
        assert data is not None and data.name == "base.tar.lz4.age"
        ok, detail = verify_archive(repo, m, base / "scratch")
        assert ok is True, detail
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_expire_keeps_the_wal_kept_backups_need(src: Src) -> None:
    env: dict[str, str] = {}
    dry = run_pgsafe(
        "--repo", str(src.repo), "expire", "--keep-last", "1", "--dry-run", "--json", env=env
    )
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["remove"] == [src.first]
    assert plan["remove_wal"], "WAL before the kept backup should go"
    real = run_pgsafe("--repo", str(src.repo), "expire", "--keep-last", "1", "--json")
    done = json.loads(real.stdout)
    assert done["remove"] == plan["remove"] and done["remove_wal"] == plan["remove_wal"]
    ids = [
        b["id"]
        for b in json.loads(run_pgsafe("--repo", str(src.repo), "list", "--json").stdout)["backups"]
    ]
    assert ids == [src.second]
    # recovery from the oldest kept backup to the latest state still works
    pgdata = src.base / "after-expire"
    r = run_pgsafe(
        "--repo",
        str(src.repo),
        "recover",
        "--pgdata",
        str(pgdata),
        "--latest",
        "--start",
        "--promote",
        "--check",
        "SELECT count(*) = 3000 FROM ledger",
        "--json",
    )
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["ok"] is True
    finally:
        LocalCluster(pgdata).destroy()


def test_export_of_a_physical_backup_is_a_plain_tar(src: Src, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    r = run_pgsafe("--repo", str(src.repo), "export", src.second, str(out))
    assert r.returncode == 0, r.stderr
    listing = subprocess.run(
        ["tar", "-tf", str(out / "base.tar")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "PG_VERSION" in listing and "global/pg_control" in listing
    data = tmp_path / "pgdata"
    data.mkdir()
    subprocess.run(["tar", "-xf", str(out / "base.tar"), "-C", str(data)], check=True)
    subprocess.run(
        [
            src.cluster.program("pg_verifybackup"),
            "-n",
            "-m",
            str(out / "backup_manifest"),
            str(data),
        ],
        check=True,
        capture_output=True,
    )
