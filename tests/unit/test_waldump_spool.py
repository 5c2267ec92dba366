"""pg_waldump's output through a spool file: read as it grows, whole, and nothing left.

A real program writes the file (a Python child that prints slower than it is read, or
stops in the middle of a line); :class:`pgsafe.pg.waldump._Following` must give every
byte, in order, and the end only once the program has exited.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pgsafe.pg.process import spawn
from pgsafe.pg.waldump import _Following, text_blocks

WRITER = """
import sys, time
for i in range(40):
    sys.stdout.write(f"line {i} " + "x" * (i * 37) + "\\n")
    if i % 10 == 0:
        sys.stdout.write("half a li")
        sys.stdout.flush()
        time.sleep(0.2)
        sys.stdout.write("ne\\n")
    sys.stdout.flush()
sys.stdout.write("no newline at the end")
"""


def _expected() -> str:
    out = []
    for i in range(40):
        out.append(f"line {i} " + "x" * (i * 37) + "\n")
        if i % 10 == 0:
            out.append("half a line\n")
    return "".join(out) + "no newline at the end"


def _follow(tmp_path: Path, size: int) -> list[str]:
    spool = tmp_path / f"out-{size}"
    fd = os.open(spool, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    writer = [sys.executable, "-c", WRITER]
    with open(spool, "rb", buffering=0) as f, spawn(writer, None, stdout_fd=fd) as run:
        os.close(fd)
        blocks = list(text_blocks(_Following(f, run), size))
    assert run.exited.ok
    return blocks


def test_a_file_read_while_it_is_written_gives_all_of_it_in_whole_lines(tmp_path: Path) -> None:
    for size in (7, 300, 1 << 20):  # the last: more than all of it
        blocks = _follow(tmp_path, size)
        assert "".join(blocks) == _expected(), size
        assert all(b.endswith("\n") for b in blocks[:-1]), size
        assert blocks[-1] == "no newline at the end"
    assert len(blocks) >= 2  # in pieces: the 1 MiB blocks did not wait for the whole file
