"""Following a file while a real child process writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pgsafe.physical.follow import follow

WRITER = """
import sys, time
with open(sys.argv[1], "wb", buffering=0) as f:
    for i in range(20):
        f.write(bytes([i]) * 10000)
        time.sleep(0.01)
"""


def test_reads_everything_a_slow_writer_writes(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
    pieces = list(follow(target, proc, read_size=4096, poll_s=0.002))
    assert proc.wait() == 0
    data = b"".join(pieces)
    assert data == b"".join(bytes([i]) * 10000 for i in range(20))
    assert len(pieces) > 20  # it read while the file grew, not once at the end


def test_nothing_when_the_writer_never_creates_the_file(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    assert list(follow(tmp_path / "never", proc, poll_s=0.002)) == []
    assert proc.wait() == 0
