"""``pgsafe mistakes`` over about 1 GB of archived pgbench WAL (a measurement, not a test).

    .venv/bin/python benchmarks/mistakes_scan.py [--gb 1.0] [--out benchmarks/results/FILE.md]

Makes a cluster archiving into a fresh repository, takes a base backup, runs pgbench
until ``--gb`` of WAL is written, with one DELETE of 10,000 rows in the middle, waits
until everything is archived, then times:

* ``find_mistakes`` with ``min_rows=1000`` (finds the DELETE among every pgbench UPDATE);
* ``find_mistakes`` with the CLI's default limit (the newest 100 of every UPDATE);
* pg_waldump over the first 16 segments: one process over the folder against one
  process per segment (why :mod:`pgsafe.mistakes.segments` reads batches).

The figures are written to ``--out`` (Markdown).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.mistakes.scan import MistakeRequest, find_mistakes
from pgsafe.mistakes.segments import Source as Seg
from pgsafe.mistakes.segments import archived, fill
from pgsafe.pg.waldump import dump
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.basebackup import backup
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from pgsafe.wal import names


def _lsn(ci: str) -> int:
    with psycopg.connect(ci, autocommit=True) as c:
        row = c.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        return names.parse_lsn(str(row[0]))


def _load(c: LocalCluster, gb: float) -> tuple[int, float]:
    ci = c.conninfo()
    bench = c.program("pgbench")
    subprocess.run([bench, "-i", "-q", "-s", "10", ci], check=True, capture_output=True)
    start = _lsn(ci)
    target = int(gb * (1 << 30))
    deleted = False
    t0 = time.perf_counter()
    while _lsn(ci) - start < target:
        subprocess.run([bench, "-n", "-c", "2", "-t", "5000", ci], check=True, capture_output=True)
        if not deleted and _lsn(ci) - start > target // 2:
            with psycopg.connect(ci, autocommit=True) as conn:
                conn.execute("DELETE FROM pgbench_accounts WHERE aid <= 10000")
            deleted = True
    return _lsn(ci) - start, time.perf_counter() - t0


def _timed(repo: Repository, request: MistakeRequest) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    r = find_mistakes(repo, request)
    return time.perf_counter() - t0, len(r.mistakes) + r.omitted, r.segments


def _waldump_ab(repo: Repository, folder: str, n: int = 16) -> tuple[float, float]:
    segs = {t: sorted(s) for t, s in archived(repo, names.DEFAULT_SEGMENT_SIZE).items()}
    tli = max(segs)
    batch = [Seg(tli, s) for s in segs[tli][-n - 1 : -1]]
    got = fill(repo, batch, folder, names.DEFAULT_SEGMENT_SIZE)
    rm = ("Heap", "Transaction", "Storage", "Database", "XLOG")
    t0 = time.perf_counter()
    with dump(folder, got[0], got[-1], rmgrs=rm) as d:
        for _ in d.lines:
            pass
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name in got:
        with dump(folder, name, name, rmgrs=rm) as d:
            for _ in d.lines:
                pass
    each = time.perf_counter() - t0
    return one, each


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--out", default="benchmarks/results/2026-12-02-mistakes.md")
    a = ap.parse_args()
    base = Path("/tmp/pgsafe-bench-mistakes")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(mode=0o755)
    home = base / "home"
    home.mkdir(mode=0o755)
    os.environ["PGSAFE_HOME"] = str(home)
    repo = Repository.open(str(base / "repo"), create=True, owner=repository_owner())
    settings = {**archive_settings(repo, home), "max_wal_size": "4GB", "synchronous_commit": "off"}
    c = LocalCluster(base / "pg", settings={"fsync": "off", **settings})
    c.initdb()
    c.start()
    try:
        backup(c.conninfo(), repo)
        wal, load_s = _load(c, a.gb)
        switch_and_wait(c.conninfo(), repo, timeout=600)
        ci = c.conninfo()
        big = _timed(repo, MistakeRequest(min_rows=1000, conninfo=ci))
        default = _timed(repo, MistakeRequest(limit=100, conninfo=ci))
        folder = base / "ab"
        folder.mkdir()
        one, each = _waldump_ab(repo, str(folder))
    finally:
        c.destroy()
    lines = [
        "# pgsafe mistakes over pgbench WAL",
        "",
        f"WAL written by pgbench (scale 10, 2 clients): {wal / (1 << 30):.2f} GiB in"
        f" {load_s:.0f} s; repository zstd; 2 shared cores (noisy machine).",
        "",
        "| run | wall | found | archived segments read |",
        "|---|---|---|---|",
        f"| `find_mistakes(min_rows=1000)` | {big[0]:.1f} s | {big[1]} | {big[2]} |",
        f"| `find_mistakes(limit=100)` (every UPDATE) | {default[0]:.1f} s | {default[1]} |"
        f" {default[2]} |",
        "",
        "pg_waldump over 16 segments (Heap, Transaction, Storage, Database, XLOG records):",
        f"one process over the folder {one:.2f} s, one process per segment {each:.2f} s.",
    ]
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
