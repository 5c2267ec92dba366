"""One ``archive-get`` of pgBackRest, the same segment ``wal-get`` fetches (wall time).

A stanza of the benchmark's own cluster (still running) in a local pgBackRest
repository with zstd compression (as pgsafe stores WAL), synchronous archive-get (no
``archive-async``: one process per segment, as pgsafe's ``wal-get`` without its
spool); the segment is pushed once with ``archive-push`` and fetched ``runs`` times,
each a fresh process as the server's OS user, to a new file.  pgBackRest 2.45 from the
host's apt sources (:func:`benchmarks.contenders.pgbackrest.ensure_pgbackrest`).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.contenders.pgbackrest import ensure_pgbackrest
from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster

STANZA = "walget"


def _conf(root: Path, cluster: LocalCluster) -> Path:
    conf = root / "pgbackrest.conf"
    conf.write_text(
        "[global]\n"
        f"repo1-path={root / 'repo'}\nlog-path={root / 'log'}\nlock-path={root / 'lock'}\n"
        f"spool-path={root / 'spool'}\nlog-level-console=warn\nlog-level-file=off\n"
        "compress-type=zst\ncompress-level=1\n"
        f"[{STANZA}]\npg1-path={cluster.datadir}\n"
        f"pg1-socket-path={cluster.run_dir}\npg1-port={cluster.port}\n"
    )
    return conf


def archive_get_wall(
    root: Path, cluster: LocalCluster, segment: Path, runs: int
) -> dict[str, float]:
    """``{"pgbackrest archive-get": median seconds}``; empty when pgBackRest is missing."""
    notes: list[str] = []
    if not ensure_pgbackrest(True, notes):
        print("; ".join(notes), flush=True)
        return {}
    user = runas.server_user()
    root.mkdir(mode=0o755)
    for d in ("repo", "log", "lock", "spool", "out"):
        (root / d).mkdir(mode=0o750)
    conf = _conf(root, cluster)
    runas.chown_tree(root, user)
    head = ["pgbackrest", f"--config={conf}", f"--stanza={STANZA}"]

    def run(*args: str) -> None:
        subprocess.run([*head, *args], check=True, capture_output=True, stdin=subprocess.DEVNULL,
                       **runas.popen_kwargs(user))  # fmt: skip

    run("stanza-create")
    staged = root / "out" / segment.name
    shutil.copyfile(segment, staged)
    runas.chown(staged, user)
    run("archive-push", str(staged))
    staged.unlink()
    walls = []
    for _ in range(runs):
        dest = root / "out" / "x"
        t0 = time.perf_counter()
        run("archive-get", segment.name, str(dest))
        walls.append(time.perf_counter() - t0)
        if dest.read_bytes() != segment.read_bytes():
            raise SystemExit("pgbackrest archive-get returned other bytes")
        dest.unlink()
    return {"pgbackrest archive-get (sync)": statistics.median(walls)}
