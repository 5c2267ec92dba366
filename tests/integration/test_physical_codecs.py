"""Physical backups and WAL archiving through the repository's codec, on a real
archiving PostgreSQL and (for s3://) a real S3-protocol server.

Each roundtrip: ``archive enable`` into the repository, a base backup, changes, a WAL
switch, then ``recover --time`` (PITR) with checks on the data.  The stored objects are
read back with the stock CLIs (``age -d``, ``zstd -d``/``lz4 -d``, ``tar -t``), and a
wrong age identity makes ``recover`` exit 2 before ``--pgdata`` exists.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.pg.programs import installed_major
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import (
    has_tool,
    make_cluster,
    psql_exec,
    query,
    reachable_tmpdir,
    run_pgsafe,
)
from tests.fixtures_s3 import S3Server

SEGMENT = 16 * 1024 * 1024


@dataclass(frozen=True)
class AgeKey:
    path: Path
    public: str


def make_identity(folder: Path, name: str = "identity.txt") -> AgeKey:
    """An age identity the server's OS user can read (restore_command reads it)."""
    key = folder / name
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    os.chmod(key, 0o600)
    runas.chown(key, runas.server_user())
    return AgeKey(key, public)


@pytest.fixture(scope="module")
def base(state_home: Path) -> Iterator[Path]:
    d = reachable_tmpdir("pgsafe-phys-codec-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def identity(base: Path) -> AgeKey:
    keys = base / "keys"
    keys.mkdir(mode=0o755)
    return make_identity(keys)


def _now(c: LocalCluster) -> str:
    return str(query(c.conninfo(), "SELECT clock_timestamp()::text")[0][0])


@dataclass
class Run:
    cluster: LocalCluster
    backup_id: str
    target_time: str
    target_lsn: str  # the same point, for majors whose pg_waldump is missing (see _target)


def archive_backup_and_changes(
    base: Path, name: str, where: list[str], env: dict[str, str], repo: Callable[[], Repository]
) -> Run:
    """archive enable, base backup, 'before' rows, the target time, 'after' rows."""
    c = make_cluster(base, name, {"max_wal_senders": "4", "wal_keep_size": "0"})
    r = run_pgsafe(*where, "archive", "enable", "-d", c.conninfo(), "--restart", env=env)
    assert r.returncode == 0, r.stderr
    psql_exec(c.conninfo(), "CREATE TABLE t (id int, phase text)")
    psql_exec(c.conninfo(), "INSERT INTO t SELECT g, 'base' FROM generate_series(1, 1000) g")
    r = run_pgsafe(*where, "backup", "-d", c.conninfo(), "--json", env=env)
    assert r.returncode == 0, r.stderr
    backup_id = json.loads(r.stdout)["id"]
    psql_exec(c.conninfo(), "INSERT INTO t SELECT g, 'before' FROM generate_series(1, 10) g")
    time.sleep(1.1)
    target = _now(c)
    lsn = str(query(c.conninfo(), "SELECT pg_current_wal_insert_lsn()")[0][0])
    time.sleep(1.1)
    psql_exec(c.conninfo(), "DELETE FROM t WHERE phase = 'base'")
    switch_and_wait(c.conninfo(), repo(), timeout=60)
    return Run(c, backup_id, target, lsn)


def _target(run: Run) -> list[str]:
    """recover's target: the time, where the server's major has pg_waldump (recover --time
    needs it); else the LSN of the same point (the matrix's embedded servers have no
    pg_waldump), as these tests are about the codecs, not the kind of target."""
    if has_tool("pg_waldump"):
        return ["--time", run.target_time]
    return ["--lsn", run.target_lsn]


def recover_to_time(
    base: Path, name: str, where: list[str], env: dict[str, str], run: Run
) -> dict[str, Any]:
    pgdata = base / name
    r = run_pgsafe(
        *where, "recover", "--pgdata", str(pgdata), *_target(run),
        "--start", "--promote", "--json",
        "--check", "SELECT count(*) = 1000 FROM t WHERE phase = 'base'",
        "--check", "SELECT count(*) = 10 FROM t WHERE phase = 'before'",
        env=env, timeout=300,
    )  # fmt: skip
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        doc: dict[str, Any] = json.loads(r.stdout)
        assert doc["ok"] is True and doc["state"] == "promoted", doc
        return doc
    finally:
        LocalCluster(pgdata).destroy()


def _tar_listing(stored: bytes, decoders: list[list[str]]) -> str:
    data = stored
    for argv in decoders:
        data = subprocess.run(argv, input=data, check=True, capture_output=True).stdout
    return subprocess.run(
        ["tar", "-t"], input=data, check=True, capture_output=True
    ).stdout.decode()


def test_local_zstd_roundtrip_stock_tools_and_permissions(base: Path) -> None:
    repo = base / "zstd repo"
    where = ["--repo", str(repo)]
    run = archive_backup_and_changes(
        base, "zstd-src", where, {}, lambda: Repository.open(str(repo))
    )
    try:
        doc = recover_to_time(base, "zstd-rec", where, {}, run)
        assert doc["plan"]["backup"] == run.backup_id
        # stock tools: zstd -d | tar -t lists the base backup; a WAL segment is 16 MiB
        (stored,) = list(repo.rglob("base.tar.zst"))
        listing = _tar_listing(stored.read_bytes(), [["zstd", "-d", "-c"]])
        assert "PG_VERSION" in listing and "backup_label" in listing
        # PostgreSQL's backup_manifest is stored beside the tar, readable by zstd -d too
        (pm,) = list(repo.rglob("backup_manifest.zst"))
        doc = json.loads(
            subprocess.run(["zstd", "-d", "-c", str(pm)], check=True, capture_output=True).stdout
        )
        # version 1 up to PostgreSQL 16; 17 added the system identifier and version 2
        assert doc["PostgreSQL-Backup-Manifest-Version"] == (2 if installed_major() >= 17 else 1)
        assert any(f["Path"] == "PG_VERSION" for f in doc["Files"])
        segs = sorted(p for p in (repo / "main" / "wal").rglob("*.zst") if len(p.stem) == 24)
        assert segs, "no WAL segment archived"
        raw = subprocess.run(
            ["zstd", "-d", "-c", str(segs[-1])], check=True, capture_output=True
        ).stdout
        assert len(raw) == SEGMENT
        # objects written by wal-push as the server's OS user: 0600 files in 0700 folders
        user = runas.server_user()
        for p in [*segs, segs[-1].parent, repo / "main" / "wal"]:
            st = p.stat()
            assert stat.S_IMODE(st.st_mode) == (0o700 if p.is_dir() else 0o600), p
            if user is not None:
                assert st.st_uid == user.uid, p
    finally:
        run.cluster.destroy()


def test_local_lz4_age_roundtrip_and_wrong_key(base: Path, identity: AgeKey) -> None:
    repo = base / "lz4-age"
    cfg = base / "lz4-age.toml"
    cfg.write_text(
        f'compression = "lz4"\nencryption = "age"\nage_recipients = ["{identity.public}"]\n'
    )
    where = ["--config", str(cfg), "--repo", str(repo)]
    env = {"PGSAFE_AGE_IDENTITY_FILE": str(identity.path)}
    # archiving and the base backup need only the public key (it is in the marker)
    run = archive_backup_and_changes(base, "lz4-src", where, {}, lambda: Repository.open(str(repo)))
    try:
        command = query(run.cluster.conninfo(), "SHOW archive_command")[0][0]
        assert "AGE-SECRET-KEY" not in str(command) and "IDENTITY" not in str(command)
        (stored,) = list(repo.rglob("base.tar.lz4.age"))
        assert list((repo / "main" / "wal").rglob("*.lz4.age"))
        assert not list(repo.rglob("*.zst"))
        listing = _tar_listing(
            stored.read_bytes(), [["age", "-d", "-i", str(identity.path)], ["lz4", "-d", "-c"]]
        )
        assert "PG_VERSION" in listing
        manifest = json.loads((stored.parent / "manifest.json").read_text())["manifest"]
        assert {o["compression"] for o in manifest["objects"]} == {"lz4+age"}

        # a wrong identity: exit 2, and --pgdata is never created
        wrong = make_identity(base / "keys", "wrong.txt")
        pgdata = base / "lz4-wrong"
        r = run_pgsafe(
            *where, "recover", "--pgdata", str(pgdata), *_target(run),
            env={"PGSAFE_AGE_IDENTITY_FILE": str(wrong.path)},
        )  # fmt: skip
        assert r.returncode == 2, r.stdout + r.stderr
        assert not pgdata.exists()
        no_key = run_pgsafe(*where, "recover", "--pgdata", str(pgdata), "--latest")
        assert no_key.returncode == 2 and not pgdata.exists()

        if runas.server_user() is not None:
            # the right identity, readable by us but not by the server's OS user: the
            # restore_command probe (run while the backup is extracted) refuses, and the
            # data directory is put back as it was: absent, or empty
            private = base / "keys" / "root-only.txt"
            shutil.copy(identity.path, private)
            os.chown(private, 0, 0)
            os.chmod(private, 0o600)
            empty = base / "lz4-empty"
            empty.mkdir(mode=0o700)
            runas.chown(empty, runas.server_user())
            for where_to in (pgdata, empty):
                r = run_pgsafe(
                    *where, "recover", "--pgdata", str(where_to), *_target(run),
                    env={"PGSAFE_AGE_IDENTITY_FILE": str(private)},
                )  # fmt: skip
                assert r.returncode == 2, r.stdout + r.stderr
                assert "restore_command would fail" in r.stderr, r.stderr
            assert not pgdata.exists()
            assert empty.is_dir() and not any(empty.iterdir())

        recover_to_time(base, "lz4-rec", where, env, run)
    finally:
        run.cluster.destroy()


def test_s3_zstd_age_roundtrip(
    base: Path, identity: AgeKey, s3_server: S3Server, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/pgsafe"
    cfg = base / "s3.toml"
    cfg.write_text(f'encryption = "age"\nage_recipients = ["{identity.public}"]\n')
    where = ["--config", str(cfg), "--repo", url]
    env = {**s3_server.env(), "PGSAFE_AGE_IDENTITY_FILE": str(identity.path)}
    run = archive_backup_and_changes(base, "s3-src", where, env, lambda: Repository.open(url))
    try:
        command = str(query(run.cluster.conninfo(), "SHOW archive_command")[0][0])
        assert f" {url} " in command and "PGSAFE_S3_ENDPOINT=" in command
        assert s3_server.env()["AWS_SECRET_ACCESS_KEY"] not in command
        client = s3_server.client()
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
        data_key = f"pgsafe/main/backups/{run.backup_id}/base.tar.zst.age"
        assert data_key in keys
        assert any(k.startswith("pgsafe/main/wal/") and k.endswith(".zst.age") for k in keys)
        body = client.get_object(Bucket=s3_bucket, Key=data_key)["Body"].read()
        listing = _tar_listing(
            body, [["age", "-d", "-i", str(identity.path)], ["zstd", "-d", "-c"]]
        )
        assert "PG_VERSION" in listing
        recover_to_time(base, "s3-rec", where, env, run)
    finally:
        run.cluster.destroy()


@pytest.mark.parametrize(
    ("compression", "taken", "decoders"),
    [
        ("gzip", "server-gzip", [["gzip", "-d", "-c"]]),  # the server compresses
        ("none", "client-none", []),  # pg_basebackup's stdout streams through pgsafe
    ],
)
def test_backup_paths_by_compression(
    base: Path, compression: str, taken: str, decoders: list[list[str]]
) -> None:
    """Each compression takes its path (server-side compression, or the stdout stream
    when there is nothing to compress), stores a standard tar and recovers."""
    repo = base / f"{compression}-repo"
    cfg = base / f"{compression}.toml"
    cfg.write_text(f'compression = "{compression}"\n')
    where = ["--config", str(cfg), "--repo", str(repo)]
    c = make_cluster(base, f"{compression}-src", {"max_wal_senders": "4"})
    pgdata = base / f"{compression}-rec"
    try:
        psql_exec(c.conninfo(), "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 500) g")
        r = run_pgsafe(*where, "backup", "-d", c.conninfo(), "--json")
        assert r.returncode == 0, r.stderr
        backup_id = json.loads(r.stdout)["id"]
        folder = repo / "main" / "backups" / backup_id
        manifest = json.loads((folder / "manifest.json").read_text())["manifest"]
        if c.major < 15:  # pg_basebackup's server-side compression is PostgreSQL 15's
            taken = taken.replace("server-", "client-")
        assert manifest["physical"]["compression"] == taken
        (stored,) = [p for p in folder.iterdir() if p.name.startswith("base.tar")]
        listing = _tar_listing(stored.read_bytes(), decoders)
        assert "backup_label" in listing.splitlines()[0] and "PG_VERSION" in listing
        r = run_pgsafe(
            *where, "recover", "--pgdata", str(pgdata), "--immediate", "--start", "--json",
            "--check", "SELECT count(*) = 500 FROM t", timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["ok"] is True
    finally:
        LocalCluster(pgdata).destroy()
        c.destroy()
