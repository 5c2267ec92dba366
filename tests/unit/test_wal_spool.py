"""wal-get's spool (pgsafe.wal.spool) through the lean entry: a segment a live
prefetcher wrote is taken by a rename, a damaged one is detected and fetched again, and
what no live prefetcher holds (a crash's leftovers) is never used."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.wal import entry, prefetcher, spool
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
    a, b, c, d, e, f = (f"0000000100000000000000{i:02X}" for i in range(1, 7))
    s = spool.parse_journal(
        f"got {a} spool 0.5\ngot {b} fetched 1\nbad\ngot {c} spool nan\ngot {d} spool -1\n"
        f"got {e} missing 0.25\ngot {f} weird 1\ngot 00000002.history fetched 2\n"
        "got A spool 1\n"  # history files and other names are not segments: not counted
    )
    assert (s.from_spool, s.fetched, s.missing, s.damaged) == (1, 1, 1, 0)
    assert s.wait_s == pytest.approx(1.75)


def test_a_ready_prefetcher_answers_what_wal_get_asks_for(clean_env: Path) -> None:
    """A history file, a history file and a segment not archived: each asked of the
    live prefetcher (which has the repository open) and answered through the spool —
    wal-get's own --repo names no repository, so it could not have fetched them."""
    repo = make_repo(clean_env)
    hist = clean_env / "00000002.history"
    hist.write_text("1\t0/3000000\tno recovery target specified\n")
    assert entry.main(["--repo", str(repo.storage.url), "wal-push", str(hist)]) == 0
    datadir = clean_env / "pgdata"  # as PostgreSQL runs restore_command: its pid, recovering
    datadir.mkdir()
    (datadir / "postmaster.pid").write_text(f"{os.getpid()}\n")
    (datadir / "recovery.signal").touch()
    d = clean_env / "spool"
    d.mkdir(mode=0o700)
    (d / spool.KEEP).touch()  # the journal outlives the prefetcher (read below)
    code = (
        "import sys;from pgsafe.wal import prefetcher;from pgsafe.repo.repository import "
        "Repository;prefetcher._serve(sys.argv[1],sys.argv[2],"
        "lambda:Repository.open(sys.argv[3],'main'),4,1)"
    )
    serving = subprocess.Popen([sys.executable, "-c", code, str(d), str(datadir),
                                str(repo.storage.url)])  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (d / spool.READY).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        elsewhere = ["--repo", str(clean_env / "no-repo"), "wal-get", "--spool", str(d)]
        dest = clean_env / "RECOVERYHISTORY"
        assert entry.main([*elsewhere, "00000002.history", str(dest)]) == 0
        assert dest.read_bytes() == hist.read_bytes()
        assert entry.main([*elsewhere, "00000003.history", str(dest)]) == 1
        assert entry.main([*elsewhere, NAME, str(clean_env / "RECOVERYXLOG")]) == 1
    finally:
        prefetcher.stop(str(d))
        serving.wait(30)
    assert [j[:3] for j in _journal(d)] == [
        ["want", "00000002.history"], ["got", "00000002.history", "spool"],
        ["want", "00000003.history"], ["got", "00000003.history", "missing"],
        ["want", NAME], ["got", NAME, "missing"],
    ]  # fmt: skip
    assert not (clean_env / "RECOVERYXLOG").exists()
