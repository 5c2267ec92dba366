"""Where ``pgsafe mistakes`` spends its time, and before/after runs, alternating.

    .venv/bin/python benchmarks/mistakes_speed.py --before DIR [--rounds 3] [--out FILE]

Needs the repository ``benchmarks/mistakes_scan.py`` made (``/tmp/pgsafe-bench-mistakes``,
about 1.2 GB of pgbench WAL).  ``DIR`` holds another checkout's ``src`` (``git archive
main src | tar -x -C DIR``).  It measures:

* the profile: for 16 segments, decoding them from the repository, pg_waldump alone
  (its output to a file), and the Python side reading that output;
* ``find_mistakes(min_rows=N, limit=100)`` (``--min-rows``, 1000 unless given; 0 is what
  ``pgsafe mistakes`` asks with no option) over the whole repository with the code of ``DIR``
  and of this checkout, one after the other, ``--rounds`` times (a child process each:
  wall time, and the CPU time of it and its children).

A measurement, not a test: the figures go to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

BASE = Path("/tmp/pgsafe-bench-mistakes")
HERE = Path(__file__).resolve().parent.parent

CHILD = """
import os, resource, sys, time
from pgsafe.repo.repository import Repository
from pgsafe.mistakes.scan import MistakeRequest, find_mistakes
repo = Repository.open(sys.argv[1], "main")
t0 = time.perf_counter()
r = find_mistakes(repo, MistakeRequest(min_rows=int(sys.argv[2]), limit=100))
wall = time.perf_counter() - t0
me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime
print(f"{wall:.1f} {cpu:.1f} {len(r.mistakes) + r.omitted} {r.segments}")
"""


def _run(src: Path, min_rows: int) -> tuple[float, float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(src), "PGSAFE_HOME": str(BASE / "home")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(BASE / "repo"), str(min_rows)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1]), int(out[2]), int(out[3])


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _profile() -> list[str]:
    from pgsafe.mistakes.filters import Filter
    from pgsafe.mistakes.naming import Maps, Namer
    from pgsafe.mistakes.scan import RMGRS, _feed, _Scan
    from pgsafe.mistakes.segments import Source, archived, fill
    from pgsafe.mistakes.window import Start
    from pgsafe.pg.waldump import argv, text_blocks
    from pgsafe.repo.repository import Repository
    from pgsafe.wal import names

    repo = Repository.open(str(BASE / "repo"), "main")
    segs = {t: sorted(s) for t, s in archived(repo, names.DEFAULT_SEGMENT_SIZE).items()}
    tli = max(segs)
    batch = [Source(tli, s) for s in segs[tli][10:26]]
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), time.process_time()
        got = fill(repo, batch, d, names.DEFAULT_SEGMENT_SIZE)
        fill_s = (time.perf_counter() - t0, time.process_time() - c0)
        out = os.path.join(d, "dump.txt")
        t0, c0 = time.perf_counter(), _children_cpu()
        with open(out, "w") as f:
            cmd = argv(d, got[0], got[-1], major=15, rmgrs=RMGRS)
            subprocess.run(
                cmd, stdout=f, stderr=subprocess.DEVNULL, env={**os.environ, "TZ": "UTC"}
            )
        dump_s = (time.perf_counter() - t0, _children_cpu() - c0)
        with open(out) as f:
            lines = sum(1 for _ in f)
        scan = _Scan(Start(0, tli, None, None), Filter(min_rows=1000), Namer(None, Maps()),
                     deque(maxlen=100))  # fmt: skip
        t0, c0 = time.perf_counter(), time.process_time()
        with open(out, "rb") as f:
            _feed(text_blocks(f), scan, batch[0])
        feed_s = (time.perf_counter() - t0, time.process_time() - c0)
    return [
        "| step (16 segments) | wall | CPU |",
        "|---|---|---|",
        f"| decode from the repository (zstd) | {fill_s[0]:.2f} s | {fill_s[1]:.2f} s |",
        f"| pg_waldump, output to a file ({lines} lines) | {dump_s[0]:.2f} s | {dump_s[1]:.2f} s |",
        f"| Python reads that output (scan._feed) | {feed_s[0]:.2f} s | {feed_s[1]:.2f} s |",
    ]


def main() -> None:
    global BASE
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="a directory holding another checkout's src")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/2026-12-03-mistakes-speed.md")
    ap.add_argument("--base", default=str(BASE), help="where benchmarks/mistakes_scan.py made it")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--min-rows", type=int, default=1000, help="0: the CLI's default request")
    a = ap.parse_args()
    BASE = Path(a.base)
    profile = [] if a.no_profile else ["## Profile", "", *_profile(), ""]
    request = f"find_mistakes(min_rows={a.min_rows}, limit=100)"
    lines = [*profile, f"## {request}, alternating", ""]
    lines += ["| round | code | wall | CPU (with children) | found | segments |"]
    lines += ["|---|---|---|---|---|---|"]
    rows: list[str] = []
    for i in range(a.rounds):
        for label, src in (("before", Path(a.before) / "src"), ("after", HERE / "src")):
            wall, cpu, found, segs = _run(src, a.min_rows)
            rows.append(f"| {i + 1} | {label} | {wall:.1f} s | {cpu:.1f} s | {found} | {segs} |")
            print(rows[-1], flush=True)
    load = os.getloadavg()
    lines += [*rows, "", f"Load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}."]
    Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
