"""Logical backups through the repository's codec: compression choices and age
encryption, readable with the stock CLIs; a wrong key changes nothing (exit 2); a
flipped byte in an encrypted object is found by verify (exit 3)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from tests.conftest import (
    PAGILA,
    pagila_fingerprint,
    psql_exec,
    query,
    run_pgsafe,
    server_tool,
    skip_if_dumps_rejected,
)
from tests.fixtures_s3 import S3Server

EXPECTED = (PAGILA / "fingerprint.expected.txt").read_text()
PAGILA_DB = "pagila_tpl"


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("age")
    key = d / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return key, public


def config(tmp: Path, body: str) -> Path:
    cfg = tmp / "pgsafe.toml"
    cfg.write_text(body)
    return cfg


@skip_if_dumps_rejected()
def test_lz4_and_age_roundtrip_and_stock_tools(
    repo: Path,
    pg: LocalCluster,
    pagila_template: str,
    tmp_path: Path,
    identity: tuple[Path, str],
) -> None:
    key, public = identity
    cfg = config(
        tmp_path, f'compression = "lz4"\nencryption = "age"\nage_recipients = ["{public}"]\n'
    )
    env = {"PGSAFE_AGE_IDENTITY_FILE": str(key)}
    r = run_pgsafe(
        "--config",
        str(cfg),
        "--repo",
        str(repo),
        "dump",
        "-d",
        pg.conninfo(pagila_template),
        "--json",
    )
    assert r.returncode == 0, r.stderr  # encrypting needs only the public recipient
    doc = json.loads(r.stdout)
    (stored,) = list(repo.rglob("*.dump.lz4.age"))
    assert b"actor" not in stored.read_bytes()  # encrypted at rest
    # the stock CLIs read it: age -d | lz4 -d | pg_restore -l
    dec = subprocess.run(
        ["age", "-d", "-i", str(key), str(stored)], check=True, capture_output=True
    ).stdout
    raw = subprocess.run(["lz4", "-d", "-c"], input=dec, check=True, capture_output=True).stdout
    listing = subprocess.run(
        [server_tool("pg_restore"), "-l"], input=raw, check=True, capture_output=True
    ).stdout.decode()
    assert "TABLE DATA public rental" in listing
    # restore needs the identity
    target = "pagila_from_age"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    no_key = run_pgsafe(
        "--repo", str(repo), "restore", doc["id"], "--create", "-d", pg.conninfo(target)
    )
    assert no_key.returncode == 2 and "identity" in no_key.stderr
    assert query(pg.conninfo(), f"SELECT 1 FROM pg_database WHERE datname = '{target}'") == []
    wrong = tmp_path / "wrong.txt"
    subprocess.run(["age-keygen", "-o", str(wrong)], check=True, capture_output=True)
    bad = run_pgsafe(
        "--repo",
        str(repo),
        "restore",
        doc["id"],
        "--create",
        "-d",
        pg.conninfo(target),
        env={"PGSAFE_AGE_IDENTITY_FILE": str(wrong)},
    )
    assert bad.returncode == 2, bad.stderr
    assert query(pg.conninfo(), f"SELECT 1 FROM pg_database WHERE datname = '{target}'") == []
    ok = run_pgsafe(
        "--repo", str(repo), "restore", doc["id"], "--create", "-d", pg.conninfo(target), env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert pagila_fingerprint(pg.conninfo(target)) == EXPECTED
    v = run_pgsafe("--repo", str(repo), "verify", doc["id"], env=env)
    assert v.returncode == 0, v.stdout + v.stderr
    # a flipped byte inside the encrypted object: verify names it, exit 3
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x40
    stored.write_bytes(bytes(data))
    v = run_pgsafe("--repo", str(repo), "verify", doc["id"], "--json", env=env)
    assert v.returncode == 3
    bad_checks = [c["name"] for c in json.loads(v.stdout)["checks"] if not c["ok"]]
    assert f"object {stored.name}" in bad_checks


def test_zstd_repository_objects_read_with_zstd_cli(
    repo: Path, pg: LocalCluster, pagila_template: str, tmp_path: Path
) -> None:
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(pagila_template), "--json")
    assert r.returncode == 0, r.stderr
    (stored,) = list(repo.rglob("*.dump.zst"))
    raw = subprocess.run(["zstd", "-d", "-c", str(stored)], check=True, capture_output=True).stdout
    listing = subprocess.run(
        [server_tool("pg_restore"), "-l"], input=raw, check=True, capture_output=True
    ).stdout.decode()
    assert "TABLE DATA public payment_p2022_01" in listing
    marker = json.loads((repo / "pgsafe-repo.json").read_text())
    assert marker["codec"]["compression"] == "zstd"
    # the repository keeps its codec: a later run configured for gzip still writes zstd
    cfg = config(tmp_path, 'compression = "gzip"\n')
    again = run_pgsafe(
        "--config", str(cfg), "--repo", str(repo), "dump", "-d", pg.conninfo(pagila_template)
    )
    assert again.returncode == 0 and not list(repo.rglob("*.gz"))


def test_encrypted_repository_needs_a_recipient(
    repo: Path, pg: LocalCluster, tmp_path: Path
) -> None:
    cfg = config(tmp_path, 'encryption = "age"\n')
    r = run_pgsafe("--config", str(cfg), "--repo", str(repo), "dump", "-d", pg.conninfo())
    assert r.returncode == 2 and "recipient" in r.stderr
    assert not (repo / "pgsafe-repo.json").exists()


@skip_if_dumps_rejected()
def test_s3_zstd_age_logical_roundtrip(
    s3_server: S3Server,
    s3_bucket: str,
    pg: LocalCluster,
    pagila_template: str,
    tmp_path: Path,
    identity: tuple[Path, str],
) -> None:
    key, public = identity
    url = f"s3://{s3_bucket}/pgsafe"
    cfg = config(tmp_path, f'encryption = "age"\nage_recipients = ["{public}"]\n')
    env = {**s3_server.env(), "PGSAFE_AGE_IDENTITY_FILE": str(key)}
    r = run_pgsafe(
        "--config",
        str(cfg),
        "--repo",
        url,
        "dump",
        "-d",
        pg.conninfo(pagila_template),
        "--json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    backup_id = json.loads(r.stdout)["id"]
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert f"pgsafe/main/backups/{backup_id}/{PAGILA_DB}.dump.zst.age" in keys
    target = "pagila_from_s3"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    r = run_pgsafe(
        "--repo", url, "restore", backup_id, "--create", "-d", pg.conninfo(target), env=env
    )
    assert r.returncode == 0, r.stderr
    assert pagila_fingerprint(pg.conninfo(target)) == EXPECTED
    v = run_pgsafe("--repo", url, "verify", backup_id, env=env)
    assert v.returncode == 0, v.stdout + v.stderr
