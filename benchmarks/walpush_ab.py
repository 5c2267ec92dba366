"""Alternating A/B of archive commands on one WAL segment (as root, run as the server's user).

    python3 benchmarks/walpush_ab.py --seg SEGMENT --runs 25 \\
        'after=PYTHON -I -S -c ... --repo R wal-push' 'pgBackRest=pgbackrest ... archive-push'

Each round runs every contender once (A B C A B C ...) on a fresh copy of SEGMENT under a
new name (the copy's path is appended to the command), as ``--user``; prints medians of
wall time, CPU (user+sys of the command's process tree, from wait4) and peak RSS.  Used
for benchmarks/results/2026-11-25-wal-push-lean.md: unlike benchmarks/run.py it can
put two versions of pgsafe side by side.
"""

from __future__ import annotations

import argparse
import os
import pwd
import random
import shutil
import statistics
import subprocess
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seg", required=True)
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--work", default="/tmp")
    ap.add_argument("contenders", nargs="+", help="NAME=COMMAND (the segment's path is appended)")
    a = ap.parse_args()
    pw = pwd.getpwnam(a.user)
    env = {"PATH": "/usr/bin:/bin", "HOME": pw.pw_dir}
    cons = [c.split("=", 1) for c in a.contenders]
    res: dict[str, list[tuple[float, float, float]]] = {n: [] for n, _ in cons}
    for _ in range(a.runs):
        for name, cmd in cons:
            seg = os.path.join(a.work, f"00000001000000FE{random.randrange(1 << 31):08X}")
            shutil.copyfile(a.seg, seg)
            os.chown(seg, pw.pw_uid, pw.pw_gid)
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                ["/bin/sh", "-c", f"{cmd} {seg}"], user=pw.pw_uid, group=pw.pw_gid,
                extra_groups=[], env=env, cwd="/",
            )  # fmt: skip
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            if status:
                print(f"{name}: exit status {status}")
            res[name].append((wall * 1000, (ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss / 1024))
            os.unlink(seg)
    first = None
    for name, _ in cons:
        wall = statistics.median(r[0] for r in res[name])
        first = first or wall
        cpu = statistics.median(r[1] for r in res[name])
        rss = statistics.median(r[2] for r in res[name])
        print(f"| {name} | {wall:.0f} ms | {wall / first:.2f} | {cpu:.0f} ms | {rss:.0f} MB |")


if __name__ == "__main__":
    main()
