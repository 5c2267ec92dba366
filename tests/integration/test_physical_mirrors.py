"""[[repos]] for physical backups and WAL: archive_command reaches every repository
(``--config``), a segment counts as archived only once each repository has it, and
``recover`` takes a base backup or WAL segment that is missing or damaged in the first
repository from the second, and says so in its report."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe


@pytest.fixture(scope="module")
def base(state_home: Path) -> Iterator[Path]:
    d = reachable_tmpdir("pgsafe-phys-mirror-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _segments(root: Path) -> list[Path]:
    return sorted(
        (p for p in (root / "main" / "wal").rglob("*.zst") if len(p.name) == 28),
        key=lambda p: p.name,
    )


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_wal_and_backup_in_both_and_fallback_on_recover(base: Path) -> None:
    one, two = base / "one", base / "two"
    cfg = base / "pgsafe.toml"
    cfg.write_text(
        f'[[repos]]\nname = "local"\nurl = "{one}"\n\n[[repos]]\nname = "offsite"\nurl = "{two}"\n'
    )
    os.chmod(cfg, 0o644)
    where = ["--config", str(cfg)]
    c = make_cluster(base, "src", {"max_wal_senders": "4"})
    try:
        r = run_pgsafe(*where, "archive", "enable", "-d", c.conninfo(), "--restart")
        assert r.returncode == 0, r.stderr
        command = str(query(c.conninfo(), "SHOW archive_command")[0][0])
        words = shlex.split(command.replace("%%", "%"))
        assert words[words.index("--config") + 1] == str(cfg) and "--repo" not in words

        psql_exec(c.conninfo(), "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 500) g")
        r = run_pgsafe(*where, "backup", "-d", c.conninfo(), "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        backup_id, stop_wal = doc["id"], doc["stop_wal"]
        repo = Repository.open_many([("local", str(one)), ("offsite", str(two))])
        for n in (2, 3):
            psql_exec(c.conninfo(), f"INSERT INTO t SELECT g FROM generate_series(1, {n * 100}) g")
            switch_and_wait(c.conninfo(), repo, timeout=60)  # waits for both repositories
        assert [p.name for p in _segments(one)] == [p.name for p in _segments(two)]
        for root in (one, two):
            assert (root / "main" / "backups" / backup_id / "base.tar.zst").is_file()

        # wal-push fails while the second repository cannot be written, then catches up
        wal_two = two / "main" / "wal"
        runas.chown_tree(wal_two, None)
        os.chown(wal_two, 0, 0)
        os.chmod(wal_two, 0o700)
        psql_exec(c.conninfo(), "INSERT INTO t SELECT g FROM generate_series(1, 7) g")
        stuck = str(query(c.conninfo(), "SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
        psql_exec(c.conninfo(), "SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while query(c.conninfo(), "SELECT failed_count FROM pg_stat_archiver")[0][0] == 0:
            assert time.monotonic() < deadline, "archiving did not fail"
            time.sleep(0.2)
        assert any(p.name.startswith(stuck) for p in _segments(one))
        assert query(c.conninfo(), "SELECT last_archived_wal FROM pg_stat_archiver")[0][0] != stuck
        runas.chown_tree(wal_two, runas.server_user())
        deadline = time.monotonic() + 60
        while query(c.conninfo(), "SELECT last_archived_wal FROM pg_stat_archiver")[0][0] != stuck:
            assert time.monotonic() < deadline, "archiving did not catch up"
            time.sleep(0.2)
        assert any(p.name.startswith(stuck) for p in _segments(two))
        expected = int(query(c.conninfo(), "SELECT count(*) FROM t")[0][0])
    finally:
        c.destroy()

    # damage repository 1: the base backup, one needed segment missing, one damaged
    _flip(one / "main" / "backups" / backup_id / "base.tar.zst", 5000)
    after = [p for p in _segments(one) if p.name[:24] > stop_wal]
    assert len(after) >= 2, [p.name for p in _segments(one)]
    missing, damaged = after[0], after[1]
    missing.unlink()
    _flip(damaged, len(damaged.read_bytes()) // 2)
    pgdata = base / "recovered"
    r = run_pgsafe(
        *where, "recover", "--pgdata", str(pgdata), "--latest", "--start", "--json",
        "--check", f"SELECT count(*) = {expected} FROM t", timeout=300,
    )  # fmt: skip
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        notes = "\n".join(doc["notes"])
        assert doc["ok"] is True, doc
        assert "base.tar.zst: read from repository offsite (damaged in local)" in notes, notes
        assert f"{missing.name[:24]}: read from repository offsite (missing in local)" in notes
        assert f"{damaged.name[:24]}: read from repository offsite (damaged in local)" in notes
    finally:
        LocalCluster(pgdata).destroy()
