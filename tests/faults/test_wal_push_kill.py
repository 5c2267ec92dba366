"""wal-push killed at any moment leaves either nothing or the whole segment visible."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import zstandard

from pgsafe.cluster.runas import repository_owner
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout, names
from tests.faults.killed_put import kill_put_midway

NAME = "000000010000000000000005"
SEG = 16 * 1024 * 1024


def _segment(path: Path) -> bytes:
    header = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, 1, 5 * SEG, 0, 7000000000000000001,
                         SEG, 8192)  # fmt: skip
    data = header + os.urandom(SEG - len(header))  # incompressible: the write takes a while
    path.write_bytes(data)
    return data


def _wal_name() -> names.WalName:
    wal = names.parse(NAME)
    assert wal is not None
    return wal


def _new_repo(root: Path) -> Repository:
    return Repository.open(str(root), "main", create=True, owner=repository_owner())


def test_kill_9_at_random_moments(tmp_path: Path) -> None:
    src = tmp_path / NAME
    data = _segment(src)
    key = layout.wal_key("main", _wal_name())
    outcomes = {"nothing": 0, "complete": 0}
    for i in range(12):
        repo = _new_repo(tmp_path / f"repo{i}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgsafe", "--repo", str(tmp_path / f"repo{i}"), "wal-push",
             str(src)], stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.02 + i * 0.025)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if repo.storage.stat(key) is None:
            outcomes["nothing"] += 1
            assert not [k for k in repo.storage.list("main/wal") if NAME in k]
        else:
            outcomes["complete"] += 1
            with repo.storage.open(key) as f:
                assert zstandard.ZstdDecompressor().stream_reader(f).read() == data
        # whatever happened, archiving the segment again works and is complete
        r = subprocess.run(
            [sys.executable, "-m", "pgsafe", "--repo", str(tmp_path / f"repo{i}"), "wal-push",
             str(src)], capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    assert outcomes["nothing"] > 0  # the kill did land before completion at least once


def test_kill_during_the_write_itself(tmp_path: Path) -> None:
    """Deterministic: the storage write is stopped after its first chunk, then killed."""
    root = tmp_path / "repo"
    _new_repo(root)
    key = layout.wal_key("main", _wal_name())
    kill_put_midway(root, key)
    repo = _new_repo(root)
    assert repo.storage.stat(key) is None
    assert list(repo.storage.list("main/wal")) == []
    leftovers = [p.name for p in root.rglob("*") if p.is_file() and NAME in p.name]
    assert leftovers and all(n.startswith(".tmp-") for n in leftovers)  # hidden, not visible
