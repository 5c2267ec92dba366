"""``pgsafe mistakes`` over about 1 GB of archived pgbench WAL (a measurement, not a test).

    .venv/bin/python benchmarks/mistakes_scan.py [--gb 1.0] [--out benchmarks/results/FILE.md]
    .venv/bin/python benchmarks/mistakes_scan.py --reuse   # measure the repository made before
    .venv/bin/python benchmarks/mistakes_scan.py --gb 4 --base /tmp/pgsafe-bench-mistakes-4g

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


def _load(c: LocalCluster, gb: float, transactions: int | None) -> tuple[int, float]:
    """pgbench until ``gb`` of WAL is written (or, given, ``transactions`` are run)."""
    ci = c.conninfo()
    bench = c.program("pgbench")
    subprocess.run([bench, "-i", "-q", "-s", "10", ci], check=True, capture_output=True)
    start = _lsn(ci)
    target = int(gb * (1 << 30))
    deleted = False
    done = 0
    t0 = time.perf_counter()

    def more() -> bool:
        return done < transactions if transactions else _lsn(ci) - start < target

    def half() -> bool:
        return done >= transactions // 2 if transactions else _lsn(ci) - start > target // 2

    while more():
        subprocess.run([bench, "-n", "-c", "2", "-t", "5000", ci], check=True, capture_output=True)
        done += 10000
        if not deleted and half():
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
        for _ in d.blocks:
            pass
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name in got:
        with dump(folder, name, name, rmgrs=rm) as d:
            for _ in d.blocks:
                pass
    each = time.perf_counter() - t0
    return one, each


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--transactions", type=int, help="run this many pgbench transactions instead")
    ap.add_argument("--out", default="benchmarks/results/2026-12-02-mistakes.md")
    ap.add_argument("--reuse", action="store_true", help="measure the repository of a run before")
    ap.add_argument("--base", default="/tmp/pgsafe-bench-mistakes", help="emptied first")
    a = ap.parse_args()
    base = Path(a.base)
    if a.reuse:
        _write(a.out, _measure(base, None), "(repository of an earlier run, no live server)")
        return
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
        wal, load_s = _load(c, a.gb, a.transactions)
        switch_and_wait(c.conninfo(), repo, timeout=600)
        figures = _measure(base, c.conninfo())
    finally:
        c.destroy()
    _write(a.out, figures, f"{wal / (1 << 30):.2f} GiB written by pgbench in {load_s:.0f} s")


Figures = tuple[tuple[float, int, int], tuple[float, int, int], float, float]


def _measure(base: Path, conninfo: str | None) -> Figures:
    os.environ["PGSAFE_HOME"] = str(base / "home")
    repo = Repository.open(str(base / "repo"))
    big = _timed(repo, MistakeRequest(min_rows=1000, conninfo=conninfo))
    default = _timed(repo, MistakeRequest(limit=100, conninfo=conninfo))
    folder = base / "ab"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    one, each = _waldump_ab(repo, str(folder))
    return big, default, one, each


def _write(out: str, f: Figures, how: str) -> None:
    big, default, one, each = f
    lines = [
        "# pgsafe mistakes over pgbench WAL",
        "",
        f"pgbench (scale 10, 2 clients) WAL, one DELETE of 10,000 rows in the middle; {how};"
        " repository zstd; 2 cores shared with other sessions (noisy: compare within a run).",
        "",
        "| run | wall | found | archived segments read |",
        "|---|---|---|---|",
        f"| `find_mistakes(min_rows=1000)` | {big[0]:.1f} s | {big[1]} | {big[2]} |",
        f"| `find_mistakes(limit=100)` (every pgbench UPDATE is one) | {default[0]:.1f} s |"
        f" {default[1]} | {default[2]} |",
        "",
        "pg_waldump over 16 segments (Heap, Transaction, Storage, Database, XLOG records),"
        " its output read by Python:",
        f"one process over the folder {one:.2f} s, one process per segment {each:.2f} s.",
    ]
    Path(out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
