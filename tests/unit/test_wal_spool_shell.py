"""The restore_command's shell path (pgsafe.wal.spool.shell_take): run by /bin/sh as
PostgreSQL runs it, it takes a segment the live prefetcher wrote with one find and one
mv, and hands everything else -- a damaged, linked, noted or unrecorded file, a dead
or missing prefetcher -- to the Python command that follows, touching nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.wal import spool

NAME = "000000010000000000000002"
FALLBACK = "echo python-path; exit 7"


def expand(command: str, f: str, p: str) -> str:
    """What PostgreSQL runs: %f, %p and %% replaced, left to right."""
    out, i = [], 0
    while i < len(command):
        two = command[i : i + 2]
        if two in ("%f", "%p", "%%"):
            out.append({"%f": f, "%p": p, "%%": "%"}[two])
            i += 2
        else:
            out.append(command[i])
            i += 1
    return "".join(out)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A spool folder (a space and a % in its name) whose ``ready`` names a live pid."""
    d = tmp_path / "data dir%x.spool-1"
    d.mkdir(mode=0o700)
    proc = subprocess.Popen(["sleep", "600"])
    (d / spool.READY).write_text(f"{proc.pid}\n")
    yield d, proc
    proc.kill()
    proc.wait()


def _spooled(d: Path, data: bytes = b"segment bytes") -> None:
    (d / NAME).write_bytes(data)
    st = os.stat(d / NAME)
    (d / (NAME + spool.SUM)).write_bytes(spool.sum_line(hashlib.sha256(data).hexdigest(), st))


def _run(d: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    find, mv = shutil.which("find"), shutil.which("mv")
    assert find and mv
    command = spool.shell_take(str(d), find, mv) + FALLBACK
    return subprocess.run(
        ["/bin/sh", "-c", expand(command, NAME, str(dest))],
        capture_output=True, text=True, cwd=d.parent, check=False,
    )  # fmt: skip


def _fell_through(r: subprocess.CompletedProcess[str], d: Path, dest: Path) -> None:
    assert r.returncode == 7 and r.stdout == "python-path\n", r
    assert r.stderr == "", r.stderr  # the shell path is quiet: the server log stays clean
    assert not dest.exists()
    assert not (d / spool.JOURNAL).exists()


def test_a_spooled_segment_is_moved_and_journalled(
    live: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    d, _ = live
    _spooled(d)
    ino = (d / NAME).stat().st_ino
    dest = tmp_path / "RECOVERYXLOG"
    r = _run(d, dest)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    assert dest.read_bytes() == b"segment bytes" and dest.stat().st_ino == ino
    assert not (d / NAME).exists()
    assert (d / spool.JOURNAL).read_text() == f"got {NAME} spool 0\n"
    stats = spool.parse_journal((d / spool.JOURNAL).read_text())
    assert (stats.from_spool, stats.fetched) == (1, 0)


def test_a_segment_changed_after_its_sum_goes_to_python(
    live: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    d, _ = live
    _spooled(d)
    time.sleep(0.05)  # past the clock tick of the sum
    fd = os.open(d / NAME, os.O_WRONLY)
    os.pwrite(fd, b"\xff", 3)
    os.close(fd)
    dest = tmp_path / "RECOVERYXLOG"
    _fell_through(_run(d, dest), d, dest)
    assert (d / NAME).exists()  # left for Python, which compares its sha256


def test_a_change_at_once_after_the_sum_is_seen(
    live: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """The sum written as the prefetcher writes it (spool.write_sum), a tick after the
    segment's last write; the segment changed at once -- in the same tick of the file
    system's clock as the sum, so that its new ctime would equal the sum's mtime: the
    shell path still hands it to Python, whose rule (times not those recorded: compare
    the sha256) sees the change too; thirty times over."""
    d, _ = live
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    dest = tmp_path / "RECOVERYXLOG"
    try:
        for i in range(30):
            data = b"segment bytes %d" % i
            fd = os.open(NAME, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600, dir_fd=dfd)
            try:
                os.write(fd, data)
                time.sleep(0.01)  # the sum in a later tick than the segment's write
                spool.write_sum(dfd, NAME, hashlib.sha256(data).hexdigest(), fd)
                os.pwrite(fd, b"\xff", 3)
            finally:
                os.close(fd)
            _fell_through(_run(d, dest), d, dest)
            _, size, ino, mtime, ctime = (d / (NAME + spool.SUM)).read_text().split()
            st = (d / NAME).stat()
            assert (st.st_size, st.st_ino) == (int(size), int(ino))
            assert (st.st_mtime_ns, st.st_ctime_ns) != (int(mtime), int(ctime)), i
    finally:
        os.close(dfd)


@pytest.mark.parametrize("pid", ["", "-1", "0 1", "abc", "dead"])
def test_no_live_prefetcher_no_shell_path(
    live: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path, pid: str
) -> None:
    d, _ = live
    _spooled(d)
    if pid == "dead":
        gone = subprocess.Popen(["true"])
        gone.wait()
        pid = str(gone.pid)
    (d / spool.READY).write_text(pid + "\n")
    dest = tmp_path / "RECOVERYXLOG"
    _fell_through(_run(d, dest), d, dest)


def test_without_ready_no_shell_path(
    live: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    d, _ = live
    _spooled(d)
    (d / spool.READY).unlink()
    dest = tmp_path / "RECOVERYXLOG"
    _fell_through(_run(d, dest), d, dest)


@pytest.mark.parametrize(
    "how", ["link", "hardlink", "no-sum", "note", "size", "inode", "loose", "empty"]
)
def test_what_the_prefetcher_did_not_write_goes_to_python(
    live: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path, how: str
) -> None:
    d, _ = live
    _spooled(d)
    outside = tmp_path / "outside"
    outside.write_bytes(b"not a segment")
    if how == "link":
        (d / NAME).unlink()
        (d / NAME).symlink_to(outside)
    elif how == "hardlink":
        os.link(d / NAME, tmp_path / "second-name")
    elif how == "no-sum":
        (d / (NAME + spool.SUM)).unlink()
    elif how == "note":
        (d / (NAME + spool.NOTE)).write_text(f"{NAME}: read from another repository\n")
    else:
        h, size, ino, mt, ct = (d / (NAME + spool.SUM)).read_text().split()
        if how == "size":
            size = str(int(size) + 1)
        elif how == "inode":
            ino = str(int(ino) + 1)
        elif how == "loose":  # find reads -N as "less than N": any file would match
            size, ino = "-99999999999", "-99999999999"
        else:
            size, ino = "''", "''"
        (d / (NAME + spool.SUM)).write_text(f"{h} {size} {ino} {mt} {ct}\n")
    dest = tmp_path / "RECOVERYXLOG"
    _fell_through(_run(d, dest), d, dest)
    assert outside.read_bytes() == b"not a segment"
    assert os.path.lexists(d / NAME)
