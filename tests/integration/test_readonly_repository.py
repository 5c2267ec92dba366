"""A read-only repository (a snapshot, a read-only NFS export or bind mount: the normal
disaster-recovery case): every reading command works; a command that must write says
so in one line and exits 2; ``wal-push`` logs one clean line and exits 1.

The repository is made read-only by a read-only bind mount (root ignores file modes);
where mounting is not permitted the test is skipped."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.repo.repository import Repository
from pgsafe.wal import server_record
from tests.conftest import Result, psql_exec, query, reachable_tmpdir, run_pgsafe

SYSID = 7312345678901234567
SEG = 16 * 1024 * 1024


@pytest.fixture
def readonly_view(repo: Path) -> Iterator[Callable[[], Path]]:
    """``repo`` mounted read-only at another path (made once the test has filled it)."""
    ro = reachable_tmpdir("pgsafe-ro-")
    mounted: list[Path] = []

    def mount() -> Path:
        try:
            subprocess.run(["mount", "--bind", str(repo), str(ro)], check=True,
                           capture_output=True)  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot bind-mount here: {exc}")
        mounted.append(ro)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True,
                       capture_output=True)  # fmt: skip
        probe = ro / "probe"
        with pytest.raises(OSError):
            probe.write_text("x")
        return ro

    yield mount
    for m in mounted:
        subprocess.run(["umount", str(m)], check=False, capture_output=True)
    shutil.rmtree(ro, ignore_errors=True)


def _tree(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime)
            for p in root.rglob("*")}  # fmt: skip


def ok(r: Result) -> None:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def refused(r: Result) -> None:
    rc, err = r.returncode, r.stderr
    assert rc == 2, err
    assert "Traceback" not in err and "Errno" not in err, err
    assert err.startswith("error: ") and len([ln for ln in err.splitlines()
                                              if ln.startswith("error:")]) == 1, err  # fmt: skip


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind-mount")
def test_reading_commands_work_and_writers_refuse_in_one_line(
    repo: Path, pg: LocalCluster, readonly_view: Callable[[], Path], tmp_path: Path
) -> None:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS rodb")
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS rodb_back")
    psql_exec(pg.conninfo(), "CREATE DATABASE rodb")
    psql_exec(pg.conninfo("rodb"), "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 20) g")
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo("rodb"), "--json")
    ok(r)
    backup_id = json.loads(r.stdout)["id"]
    server_record.ensure(Repository.open(str(repo)), server_record.ServerRecord(str(SYSID), SEG))
    for p in repo.glob(".lock-*"):  # a fresh snapshot: no lock file in it yet
        p.unlink()
    ro = readonly_view()
    before = _tree(repo)
    R = ("--repo", str(ro))

    # readers
    ok(run_pgsafe(*R, "list"))
    ok(run_pgsafe(*R, "show", backup_id))
    ok(run_pgsafe(*R, "info"))
    ok(run_pgsafe(*R, "export", backup_id, str(tmp_path / "out")))
    ok(run_pgsafe(*R, "restore", backup_id, "-d", pg.conninfo("rodb_back"), "--create"))
    assert query(pg.conninfo("rodb_back"), "SELECT count(*) FROM t") == [(20,)]
    v = run_pgsafe(*R, "verify", backup_id, "--json")
    ok(v)
    assert json.loads(v.stdout)["ok"] is True
    assert "read-only" in v.stderr  # the result could not be recorded: said so
    g = run_pgsafe(*R, "wal-get", "000000010000000000000009", str(tmp_path / "seg"))
    assert g.returncode == 1 and "Traceback" not in g.stderr

    # writers
    refused(run_pgsafe(*R, "keep", backup_id))
    refused(run_pgsafe(*R, "expire", "--keep-last", "1"))
    refused(run_pgsafe(*R, "mark", "ro_point", "-d", pg.conninfo()))
    refused(run_pgsafe(*R, "dump", "-d", pg.conninfo("rodb")))
    refused(run_pgsafe(*R, "backup", "-d", pg.conninfo()))

    # wal-push: one clean line, exit 1 (PostgreSQL retries)
    seg = tmp_path / "000000010000000000000002"
    header = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, 1, 0, 0, SYSID, SEG, 8192)
    seg.write_bytes(header + bytes(SEG - len(header)))
    w = run_pgsafe(*R, "wal-push", str(seg))
    assert w.returncode == 1, w.stderr
    assert "Errno" not in w.stderr and "Traceback" not in w.stderr, w.stderr
    assert "read-only" in w.stderr and len(w.stderr.strip().splitlines()) <= 2, w.stderr

    assert _tree(repo) == before  # nothing changed, nothing left behind
    # no restore point was made on the server by the refused mark
    assert not any("ro_point" in p.name for p in repo.rglob("*"))
