"""Read a file while a child process is still writing it (``tail -f`` for one writer).

``pg_basebackup -D DIR -F t`` writes its archive into ``DIR``; :func:`follow` hands the
bytes on as they land, so storing overlaps the backup instead of waiting for it, and
reads to the end once the writer has exited.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

READ_SIZE = 1 << 20
POLL_S = 0.01


def follow(
    path: Path,
    proc: subprocess.Popen[bytes],
    *,
    read_size: int = READ_SIZE,
    poll_s: float = POLL_S,
) -> Iterator[bytes]:
    """The bytes of ``path`` as ``proc`` writes them; ends once ``proc`` has exited and
    everything it wrote was read.  Nothing is yielded if the file never appears."""
    f = None
    try:
        while f is None:
            try:
                f = open(path, "rb")  # noqa: SIM115 - closed in finally
            except FileNotFoundError:
                if proc.poll() is not None:
                    return
                time.sleep(poll_s)
        while True:
            data = f.read(read_size)
            if data:
                yield data
                continue
            if proc.poll() is not None:  # the writer is gone: what is there is all
                while data := f.read(read_size):
                    yield data
                return
            time.sleep(poll_s)
    finally:
        if f is not None:
            f.close()
