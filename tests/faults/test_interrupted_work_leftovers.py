"""``expire`` removes what interrupted work leaves in a local repository: temporary
files a day old (a SIGKILLed wal-push's) and use-lock files nobody holds — never a
fresh temporary file, a held lock, another server's lock or a fixed-name lock — and
``expire --dry-run`` names them without removing anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pgsafe.cluster.runas import repository_owner
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.posix import PosixStorage
from tests.conftest import run_pgsafe
from tests.faults.killed_put import kill_put_midway

DAY = 24 * 3600


def _file(path: Path, age_s: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def _hold(lock: Path) -> subprocess.Popen[str]:
    """Another process holding ``lock`` (as a running restore holds its use lock)."""
    script = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(lock)!r}, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def test_expire_removes_old_temporary_files_and_unheld_use_locks(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    Repository.open(str(root), create=True, owner=repository_owner())
    wal = root / "main" / "wal" / "0000000100000000"
    gone = {
        "main/wal/0000000100000000/.tmp-000000010000000000000001.zst.0a1b2c": _file(
            wal / ".tmp-000000010000000000000001.zst.0a1b2c", 2 * DAY
        ),
        ".tmp-pgsafe-repo.json.abcdef": _file(root / ".tmp-pgsafe-repo.json.abcdef", 2 * DAY),
        ".lock-main-use-20240101T000000Z-shop-custom": _file(
            root / ".lock-main-use-20240101T000000Z-shop-custom"
        ),
    }
    kept = [
        _file(wal / ".tmp-000000010000000000000002.zst.ffffff", 60),  # a running wal-push's
        _file(wal / ".tmp-000000010000000000000003.zst.eeeeee", DAY - 600),  # within the grace
        _file(root / ".lock-main-use-20240102T000000Z-shop-custom"),  # held below
        _file(root / ".lock-main-catalog"),  # a fixed name: does not pile up
        _file(root / ".lock-other-use-20240101T000000Z-shop-custom"),  # another server's
        _file(root / "other" / "wal" / ".tmp-x.zst.000000", 2 * DAY),  # another server's
    ]
    holder = _hold(root / ".lock-main-use-20240102T000000Z-shop-custom")
    try:
        dry = run_pgsafe("--repo", str(root), "expire", "--keep-last", "1", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert sorted(json.loads(dry.stdout)["leftovers"]) == sorted(gone)
        assert all(p.exists() for p in [*gone.values(), *kept])  # the dry run removed nothing
        text = run_pgsafe("--repo", str(root), "expire", "--keep-last", "1", "--dry-run")
        assert all(f"would remove leftover {k}" in text.stdout for k in gone), text.stdout
        real = run_pgsafe("--repo", str(root), "expire", "--keep-last", "1", "--json")
        assert real.returncode == 0, real.stderr
        assert sorted(json.loads(real.stdout)["leftovers"]) == sorted(gone)
    finally:
        holder.communicate("")
    assert not any(p.exists() for p in gone.values())
    assert all(p.exists() for p in kept)


def test_a_lock_removed_while_waited_for_is_taken_on_the_new_file(tmp_path: Path) -> None:
    """A process that opened the lock file before expire removed it locks a new one:
    two processes never both hold one lock (one old inode, one new)."""
    root = tmp_path / "repo"
    root.mkdir()
    storage = PosixStorage(root)
    with storage.lock("main-use-x"):
        first = (root / ".lock-main-use-x").stat().st_ino
    assert storage.remove_unheld_lock(".lock-main-use-x")
    assert not (root / ".lock-main-use-x").exists()
    with storage.lock("main-use-x"):
        assert (root / ".lock-main-use-x").exists()
        assert not storage.remove_unheld_lock(".lock-main-use-x")  # held: kept
        assert (root / ".lock-main-use-x").exists()
    del first


def test_a_temporary_file_of_a_killed_wal_push_is_a_leftover(tmp_path: Path) -> None:
    """The file a SIGKILLed put leaves is found by leftovers() and is not listed."""
    root = tmp_path / "repo"
    root.mkdir()
    kill_put_midway(root, "main/wal/T/S.zst")
    storage = PosixStorage(root)
    (left,) = storage.leftovers("main")
    assert left.startswith("main/wal/T/.tmp-S.zst.")
    assert list(storage.list("main")) == []
    assert not storage.remove_leftover(left, time.time() - DAY)  # fresh: kept
    t = time.time() - 2 * DAY
    os.utime(root / left, (t, t))
    assert storage.remove_leftover(left, time.time() - DAY)
    assert not list(storage.leftovers("main"))
