"""CPU time of reading pg_waldump's output in ``pgsafe mistakes`` (``scan._feed``), before/after.

    .venv/bin/python benchmarks/mistakes_parse.py --before DIR [--dump FILE] [--rounds 3]

``DIR`` holds another checkout's ``src`` (``git archive main src | tar -x -C DIR``).
``FILE`` is pg_waldump's output over 16 segments of the repository of
``benchmarks/mistakes_scan.py`` (made when missing, about 300 MB: keep it out of git).
Each run is a child process that reads the whole file with its checkout's ``_feed``
(``min_rows=1000``, as ``benchmarks/mistakes_speed.py``): the CPU time of that call
(``time.process_time``: the machine is shared), ``before`` and ``after`` alternating.
A measurement, not a test: the table is printed, for the results file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

BASE = Path("/tmp/pgsafe-bench-mistakes")
HERE = Path(__file__).resolve().parent.parent

CHILD = """
import inspect, sys, time
from collections import deque
from pgsafe.mistakes import scan
from pgsafe.mistakes.filters import Filter
from pgsafe.mistakes.naming import Maps, Namer
from pgsafe.mistakes.segments import Source
from pgsafe.mistakes.window import Start
s = scan._Scan(Start(0, 1, None, None), Filter(min_rows=1000), Namer(None, Maps()),
               deque(maxlen=100))
try:
    from pgsafe.pg.waldump import text_blocks
except ImportError:  # before: a line at a time
    f = open(sys.argv[1])
    c0 = time.process_time()
    scan._feed(f, s, Source(1, 0), "pgsafe")
else:
    f = open(sys.argv[1], "rb")
    c0 = time.process_time()
    # a checkout from before 2026-12-03 passes the undo command's start too
    extra = ["pgsafe"] if len(inspect.signature(scan._feed).parameters) == 4 else []
    scan._feed(text_blocks(f), s, Source(1, 0), *extra)
cpu = time.process_time() - c0
print(f"{cpu:.2f} {s.collector.last_lsn} {len(s.found)}")
"""


def _make_dump(path: Path) -> None:
    import tempfile

    from pgsafe.mistakes.scan import RMGRS
    from pgsafe.mistakes.segments import Source, archived, fill
    from pgsafe.pg.waldump import argv
    from pgsafe.repo.repository import Repository
    from pgsafe.wal import names

    repo = Repository.open(str(BASE / "repo"), "main")
    segs = {t: sorted(s) for t, s in archived(repo, names.DEFAULT_SEGMENT_SIZE).items()}
    tli = max(segs)
    with tempfile.TemporaryDirectory() as d, path.open("w") as out:
        got = fill(repo, [Source(tli, s) for s in segs[tli][10:26]], d,
                   names.DEFAULT_SEGMENT_SIZE)  # fmt: skip
        cmd = argv(d, got[0], got[-1], major=None, rmgrs=RMGRS)
        env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
        subprocess.run(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, check=False)


def _run(src: Path, dump: Path) -> tuple[float, str, str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(dump)], env=env, check=True, capture_output=True,
        text=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), out[1], out[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="a directory holding another checkout's src")
    ap.add_argument("--dump", default="/tmp/pgsafe-bench-mistakes-dump.txt")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    dump = Path(a.dump)
    if not dump.exists():
        _make_dump(dump)
    with dump.open("rb") as f:
        lines = sum(1 for _ in f)
    print(f"{lines} lines of pg_waldump output, {dump.stat().st_size >> 20} MiB")
    print("| round | code | CPU of _feed | last LSN | found |")
    print("|---|---|---|---|---|")
    for i in range(a.rounds):
        for label, src in (("before", Path(a.before) / "src"), ("after", HERE / "src")):
            cpu, last, found = _run(src, dump)
            print(f"| {i + 1} | {label} | {cpu:.2f} s | {last} | {found} |", flush=True)
    load = os.getloadavg()
    print(f"Load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}.")


if __name__ == "__main__":
    main()
