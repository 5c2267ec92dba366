"""wal-get's spool (pgsafe.wal.spool) through the lean entry: a segment a live
prefetcher wrote is taken by a rename, a damaged one is detected and fetched again, and
what no live prefetcher holds (a crash's leftovers) is never used."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.wal import entry, spool
from tests.unit.test_wal_fastpush import clean_env, make_repo, segment

__all__ = ["clean_env"]

NAME = "000000010000000000000002"


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A spool whose lock another process holds (as a live prefetcher would)."""
    d = tmp_path / "spool"
    d.mkdir(mode=0o700)
    (d / spool.LOCK).touch()
    code = (
        "import fcntl,os,sys,time;fd=os.open(sys.argv[1],os.O_RDWR);"
        "fcntl.lockf(fd,fcntl.LOCK_EX);print('ok',flush=True);time.sleep(600)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(d / spool.LOCK)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
    yield d
    proc.kill()
    proc.wait()
    proc.stdout.close()


def _spooled(d: Path, data: bytes) -> None:
    """A segment as the prefetcher writes it: the file, then its sum."""
    (d / NAME).write_bytes(data)
    dfd = os.open(d, os.O_RDONLY)
    try:
        st = os.stat(NAME, dir_fd=dfd)
    finally:
        os.close(dfd)
    (d / (NAME + spool.SUM)).write_bytes(spool.sum_line(hashlib.sha256(data).hexdigest(), st))


def _get(root: Path, d: Path, dest: Path) -> int:
    return entry.main(["--repo", str(root), "wal-get", "--spool", str(d), NAME, str(dest)])


def _journal(d: Path) -> list[list[str]]:
    return [ln.split() for ln in (d / spool.JOURNAL).read_text().splitlines()]


def test_a_spooled_segment_is_taken_by_a_rename(clean_env: Path, held: Path) -> None:
    make_repo(clean_env)
    _spooled(held, b"spooled copy")
    ino = (held / NAME).stat().st_ino
    dest = clean_env / "RECOVERYXLOG"
    assert _get(clean_env / "repo", held, dest) == 0
    assert dest.read_bytes() == b"spooled copy" and dest.stat().st_ino == ino
    assert not (held / NAME).exists() and not (held / (NAME + spool.SUM)).exists()
    assert [j[:3] for j in _journal(held)] == [["got", NAME, "spool"]]


def test_a_damaged_spooled_segment_is_detected_and_fetched_again(
    clean_env: Path, held: Path
) -> None:
    repo = make_repo(clean_env)
    seg = segment(clean_env / NAME)
    assert entry.main(["--repo", str(repo.storage.url), "wal-push", str(seg)]) == 0
    data = seg.read_bytes()
    _spooled(held, data)
    with open(held / NAME, "r+b") as f:  # one byte changed in the middle
        f.seek(len(data) // 2)
        f.write(bytes([data[len(data) // 2] ^ 0xFF]))
    dest = clean_env / "RECOVERYXLOG"
    assert _get(clean_env / "repo", held, dest) == 0
    assert dest.read_bytes() == data  # the repository's copy, not the damaged one
    assert [j[:3] for j in _journal(held)] == [
        ["got", NAME, "damaged"], ["want", NAME], ["got", NAME, "fetched"],
    ]  # fmt: skip
    assert not (held / NAME).exists()
    stats = spool.read_stats(str(held))
    assert stats is not None and (stats.fetched, stats.from_spool, stats.damaged) == (1, 0, 1)


def test_leftovers_without_a_live_prefetcher_are_never_used(clean_env: Path) -> None:
    repo = make_repo(clean_env)
    seg = segment(clean_env / NAME)
    assert entry.main(["--repo", str(repo.storage.url), "wal-push", str(seg)]) == 0
    d = clean_env / "spool"
    d.mkdir(mode=0o700)
    _spooled(d, b"left by a crashed prefetcher")  # intact, but nobody holds the lock
    dest = clean_env / "RECOVERYXLOG"
    assert _get(clean_env / "repo", d, dest) == 0
    assert dest.read_bytes() == seg.read_bytes()


def test_names_and_links_in_the_spool_are_not_trusted(clean_env: Path, held: Path) -> None:
    make_repo(clean_env)
    secret = clean_env / "secret"
    secret.write_bytes(b"not WAL")
    (held / NAME).symlink_to(secret)
    st = secret.stat()
    (held / (NAME + spool.SUM)).write_bytes(
        spool.sum_line(hashlib.sha256(b"not WAL").hexdigest(), st)
    )
    dest = clean_env / "RECOVERYXLOG"
    assert _get(clean_env / "repo", held, dest) == 1  # not archived: a miss, not the link
    assert not dest.exists()
    dfd = os.open(held, os.O_RDONLY)
    try:
        assert spool.take(dfd, "../" + NAME[3:], str(dest)) == "miss"
    finally:
        os.close(dfd)


def test_journal_lines_that_are_not_ours_are_skipped() -> None:
    s = spool.parse_journal(
        "got A spool 0.5\ngot B fetched 1\nbad\ngot C spool nan\ngot D spool -1\n"
        "got E missing 0.25\ngot F weird 1\n"
    )
    assert (s.from_spool, s.fetched, s.missing, s.damaged) == (1, 1, 1, 0)
    assert s.wait_s == pytest.approx(1.75)
