"""Hostile repository records other than the catalog: the server record, restore point
records and timeline history files are untrusted input like everything else in a
repository.  Each damaged record is named (exit 3) or listed as damaged, never a
traceback, and a restore point name from the command line is checked as `mark` checks it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pgsafe.cluster.runas import repository_owner
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout
from tests.conftest import reachable_tmpdir, run_pgsafe


@pytest.fixture
def repo_dir() -> Path:
    d = reachable_tmpdir("pgsafe-records-") / "repo"
    Repository.open(str(d), create=True, owner=repository_owner())
    return d


def write(repo_dir: Path, key: str, data: bytes) -> None:
    """Write a repository file as its owner would (an attacker who can write it)."""
    path = repo_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def store_history(repo_dir: Path, timeline: int, text: str) -> None:
    repo = Repository.open(str(repo_dir))
    name = f"{timeline:08X}.history"
    body = b"".join(repo.encoder().encode([text.encode()]))
    write(repo_dir, f"main/wal/history/{name}{repo.encoder().suffix}", body)


@pytest.mark.parametrize(
    "record",
    [
        b"not json",
        b"[]",
        json.dumps({"system_identifier": "7712", "wal_segment_size": 0}).encode(),
        json.dumps({"system_identifier": "7712", "wal_segment_size": 3 << 20}).encode(),
        json.dumps({"system_identifier": ["x"]}).encode(),
        json.dumps({"system_identifier": "12; rm -rf /"}).encode(),
        json.dumps({"system_identifier": "7712", "pg_major": "fifteen"}).encode(),
    ],
)
def test_a_damaged_server_record_is_named(repo_dir: Path, record: bytes) -> None:
    write(repo_dir, layout.server_record_key("main"), record)
    r = run_pgsafe("--repo", str(repo_dir), "info")
    assert r.returncode == 3, r.stderr
    assert "server record" in r.stderr and "damaged" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_damaged_restore_point_is_listed_as_damaged(repo_dir: Path) -> None:
    write(repo_dir, layout.server_record_key("main"), b'{"system_identifier": "7712"}')
    good = {"name": "good", "lsn": "0/3000028", "lsn_int": 0x3000028}
    good["time"] = "2024-01-15T10:00:00+00:00"
    write(repo_dir, layout.mark_key("main", "good"), json.dumps(good).encode())
    write(repo_dir, layout.mark_key("main", "bad"), b"{not json")
    write(repo_dir, layout.mark_key("main", "liar"), json.dumps({**good, "lsn_int": "x"}).encode())
    r = run_pgsafe("--repo", str(repo_dir), "info")
    assert r.returncode == 0, r.stderr
    assert "restore point good: LSN 0/3000028" in r.stdout
    assert "restore point bad: DAMAGED" in r.stdout
    assert "restore point liar: DAMAGED" in r.stdout
    doc = json.loads(run_pgsafe("--repo", str(repo_dir), "--json", "info").stdout)
    assert sorted(m["name"] for m in doc["marks"] if "damaged" in m) == ["bad", "liar"]


def test_recover_to_a_damaged_or_badly_named_restore_point(repo_dir: Path) -> None:
    write(repo_dir, layout.server_record_key("main"), b'{"system_identifier": "7712"}')
    write(repo_dir, layout.mark_key("main", "bad"), b"[1, 2]")
    pgdata = reachable_tmpdir("pgsafe-records-pgdata-") / "data"
    r = run_pgsafe("--repo", str(repo_dir), "recover", "--pgdata", str(pgdata), "--name", "bad")
    assert r.returncode == 3, r.stderr
    assert "restore point record" in r.stderr and "Traceback" not in r.stderr
    for name in ("../../../etc/x", "x\nshared_preload_libraries = evil", ""):
        r = run_pgsafe("--repo", str(repo_dir), "recover", "--pgdata", str(pgdata), "--name", name)
        assert r.returncode == 2, (name, r.stderr)
        assert "Traceback" not in r.stderr
    assert not pgdata.exists()


@pytest.mark.parametrize(
    "text",
    [
        "1\tnot-an-lsn\treason\n",
        "x\t0/3000000\treason\n",
        "2\t0/3000000\tparent is not older\n",
        "1\t0/5000000\tfirst\n1\t0/3000000\tbackwards\n",
        "\xff\xfe",
    ],
)
def test_a_damaged_timeline_history_is_named(repo_dir: Path, text: str) -> None:
    write(repo_dir, layout.server_record_key("main"), b'{"system_identifier": "7712"}')
    store_history(repo_dir, 2, text)
    r = run_pgsafe("--repo", str(repo_dir), "info")
    assert r.returncode == 3, r.stderr
    assert "00000002.history is damaged" in r.stderr or "00000002.history names" in r.stderr
    assert "Traceback" not in r.stderr


def test_records_do_not_escape_the_repository(repo_dir: Path) -> None:
    """A restore point key is built from a checked name only."""
    canary = reachable_tmpdir("pgsafe-records-canary-") / "canary.json"
    canary.write_text('{"name": "x"}')
    before = os.stat(canary)
    rel = os.path.relpath(canary.with_suffix(""), repo_dir / "main" / "marks")
    pgdata = reachable_tmpdir("pgsafe-records-pgdata-") / "data"
    r = run_pgsafe("--repo", str(repo_dir), "recover", "--pgdata", str(pgdata), "--name", rel)
    assert r.returncode == 2 and "bad restore point name" in r.stderr, r.stderr
    after = os.stat(canary)
    seen = (after.st_mode, after.st_uid, after.st_size)
    assert seen == (before.st_mode, before.st_uid, before.st_size)


def test_oversized_records_are_damage_not_memory(repo_dir: Path) -> None:
    """A record pgsafe writes is small; a huge one is named as damaged, not read whole."""
    write(repo_dir, layout.server_record_key("main"), b'{"system_identifier": "7712"}')
    padding = b" " * (2 << 20)
    write(repo_dir, layout.mark_key("main", "huge"), b"{" + padding + b"}")
    r = run_pgsafe("--repo", str(repo_dir), "info")
    assert r.returncode == 0 and "restore point huge: DAMAGED" in r.stdout, r.stderr
    write(
        repo_dir, layout.server_record_key("main"), b'{"system_identifier": "7712"' + padding + b"}"
    )
    r = run_pgsafe("--repo", str(repo_dir), "info")
    assert r.returncode == 3 and "larger than" in r.stderr, r.stderr
    manifest = repo_dir / "main" / "backups" / "20240101T000000Z-shop-custom" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    with manifest.open("wb") as f:
        f.truncate(65 << 20)  # sparse: 65 MiB of zeros
    r = run_pgsafe("--repo", str(repo_dir), "--json", "list")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(r.stdout)["backups"]
    assert entry["status"] == "DAMAGED" and "larger than" in entry["damage"]
