"""A storage write killed half-way, as ``kill -9`` of wal-push or a backup leaves it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def kill_put_midway(root: Path, key: str) -> None:
    """``PosixStorage(root).put(key, ...)`` in another process, SIGKILLed (and reaped)
    once its first 64 KiB chunk is written and the next one is awaited."""
    script = (
        "import time\n"
        "from pathlib import Path\n"
        "from pgsafe.repo.storage.posix import PosixStorage\n"
        "def chunks():\n"
        "    yield b'x' * 65536\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "    yield b'y'\n"
        f"PosixStorage(Path({str(root)!r})).put({key!r}, chunks())\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout is not None and p.stdout.readline().strip() == "writing"
        p.kill()
        p.wait()
