"""The repository marker (``pgsafe-repo.json``) is repository content, so untrusted: a
damaged one is named (exit 3, no traceback), and one that weakens what the user
configured — encryption turned off, a recipient of the attacker's added — is refused
before anything is written, so no backup is ever stored in the clear or for another key.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, run_pgsafe


def keypair(d: Path, name: str) -> tuple[Path, str]:
    key = d / f"{name}.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return key, public


@pytest.fixture
def db(pg: LocalCluster) -> str:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS marker_db")
    psql_exec(pg.conninfo(), "CREATE DATABASE marker_db")
    sql = "CREATE TABLE t AS SELECT 'secret-row-' || g AS v FROM generate_series(1, 50) g"
    psql_exec(pg.conninfo("marker_db"), sql)
    return pg.conninfo("marker_db")


def marker(repo: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((repo / "pgsafe-repo.json").read_text())
    return doc


def rewrite_marker(repo: Path, doc: object) -> None:
    (repo / "pgsafe-repo.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "doc",
    [
        "not json at all",
        [1, 2],
        {"format": "1", "codec": {"compression": "zstd"}},
        {"format": 1, "codec": {"compression": "rot13"}},
        {"format": 1, "codec": "zstd"},
        {"format": 1, "codec": {"compression": "zstd", "encryption": "yes"}},
        {"format": 1, "codec": {"compression": "zstd"}, "age_recipients": ["/etc/shadow"]},
    ],
)
def test_a_damaged_marker_is_named(repo: Path, db: str, doc: object) -> None:
    assert run_pgsafe("--repo", str(repo), "dump", "-d", db).returncode == 0
    if isinstance(doc, str):
        (repo / "pgsafe-repo.json").write_text(doc)
    else:
        rewrite_marker(repo, doc)
    for args in (["list"], ["dump", "-d", db]):
        r = run_pgsafe("--repo", str(repo), *args)
        assert r.returncode == 3, (args, r.stderr)
        assert "pgsafe-repo.json" in r.stderr and "damaged" in r.stderr
        assert "Traceback" not in r.stderr


def test_unknown_marker_keys_are_kept_and_ignored(repo: Path, db: str) -> None:
    assert run_pgsafe("--repo", str(repo), "dump", "-d", db).returncode == 0
    doc = marker(repo)
    doc["added_by_a_newer_pgsafe"] = {"x": 1}
    rewrite_marker(repo, doc)
    r = run_pgsafe("--repo", str(repo), "list")
    assert r.returncode == 0, r.stderr


def test_encryption_turned_off_in_the_marker_is_refused(
    repo: Path, db: str, tmp_path: Path
) -> None:
    _, public = keypair(tmp_path, "owner")
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text(f'encryption = "age"\nage_recipients = ["{public}"]\n')
    r = run_pgsafe("--config", str(cfg), "--repo", str(repo), "dump", "-d", db)
    assert r.returncode == 0, r.stderr
    before = sorted(p.name for p in repo.rglob("*"))
    # the attacker turns encryption off so that the next dump lands in the clear
    doc = marker(repo)
    doc["codec"] = {"compression": "zstd", "level": 3, "encryption": None}
    doc["age_recipients"] = []
    rewrite_marker(repo, doc)
    r = run_pgsafe("--config", str(cfg), "--repo", str(repo), "dump", "-d", db)
    assert r.returncode == 3, r.stderr
    assert "says no encryption" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in repo.rglob("*")) == before
    assert not any(b"secret-row-" in p.read_bytes() for p in repo.rglob("*") if p.is_file())


def test_an_added_recipient_in_the_marker_is_refused(repo: Path, db: str, tmp_path: Path) -> None:
    _, public = keypair(tmp_path, "owner")
    _, attacker = keypair(tmp_path, "attacker")
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text(f'encryption = "age"\nage_recipients = ["{public}"]\n')
    assert run_pgsafe("--config", str(cfg), "--repo", str(repo), "dump", "-d", db).returncode == 0
    before = sorted(p.name for p in repo.rglob("*"))
    doc = marker(repo)
    doc["age_recipients"] = [public, attacker]
    rewrite_marker(repo, doc)
    r = run_pgsafe("--config", str(cfg), "--repo", str(repo), "dump", "-d", db)
    assert r.returncode == 3, r.stderr
    assert attacker in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in repo.rglob("*")) == before
