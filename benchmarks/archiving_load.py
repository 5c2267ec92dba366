"""Archiving benchmark: the wall time of one ``wal-push`` of a 16 MiB segment (against
``python -c pass``), and whether the archiver keeps up under ``pgbench -c 4 -T 60``.

    .venv/bin/python benchmarks/archiving_load.py [--seconds 60] [--out benchmarks/results]

Runs as root (the server as ``postgres``) or as an ordinary user.  One throwaway
cluster (fsync on, defaults otherwise), pgbench scale 10: first with archiving off,
then with ``archive_command`` = pgsafe wal-push into a local repository.  Recorded:
TPS both ways, WAL generated, ``.ready`` backlog at the end of the run and how long it
took to drain, pg_stat_archiver counts; then wal-push of real segments from that run
(each a new name, into a fresh repository) timed 10 times, with ``python -c pass`` and
the in-process zstd-1 compression of one segment for reference.

Writes ``<out>/<date>-archiving.json`` and ``<out>/<date>-archiving.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import zstandard  # noqa: E402

from benchmarks.harness.db import backlog, q  # noqa: E402
from pgsafe.cluster import runas  # noqa: E402
from pgsafe.cluster.local import LocalCluster  # noqa: E402
from pgsafe.cluster.runas import repository_owner  # noqa: E402
from pgsafe.endpoint import runtime  # noqa: E402
from pgsafe.physical.archiving import archive_settings  # noqa: E402
from pgsafe.repo.repository import Repository  # noqa: E402


def pgbench(c: LocalCluster, seconds: int) -> dict[str, Any]:
    lsn0 = q(c, "SELECT pg_current_wal_lsn()::text")
    t0 = time.monotonic()
    proc = subprocess.run(
        [c.program("pgbench"), "-h", str(c.run_dir), "-p", str(c.port), "-U", "postgres",
         "-c", "4", "-j", "2", "-T", str(seconds), "-n", "postgres"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.monotonic() - t0
    tps = float(re.findall(r"tps = ([\d.]+)", proc.stdout)[-1])
    wal = q(c, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn0}')::bigint")
    return {"tps": tps, "wall_s": round(wall, 1), "wal_bytes": int(wal)}


def timed(argv: list[str], user: runas.OsUser | None, n: int = 10) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, **runas.popen_kwargs(user))
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pgsafe-bench-", dir="/tmp"))
    os.chmod(base, 0o755)
    os.environ.setdefault("PGSAFE_HOME", str(base / "home"))
    (base / "home").mkdir(mode=0o755)
    user = runas.server_user()
    c = LocalCluster(base / "data", settings={"max_wal_size": "'1GB'"})
    results: dict[str, Any] = {}
    try:
        c.initdb()
        c.start()
        subprocess.run([c.program("pgbench"), "-h", str(c.run_dir), "-p", str(c.port),
                        "-U", "postgres", "-i", "-s", "10", "-q", "postgres"],
                       check=True, capture_output=True)  # fmt: skip
        results["without_archiving"] = pgbench(c, args.seconds)
        repo = Repository.open(str(base / "repo"), "main", create=True, owner=repository_owner())
        c.stop()
        c.configure(archive_settings(repo, base / "home"))
        c.start()
        q(c, "SELECT pg_stat_reset_shared('archiver')")
        run = pgbench(c, args.seconds)
        run["ready_at_end"] = backlog(c)
        t0 = time.monotonic()
        q(c, "SELECT pg_switch_wal()")
        while backlog(c) and time.monotonic() - t0 < 120:
            time.sleep(0.1)
        run["drain_s"] = round(time.monotonic() - t0, 2)
        run["ready_after_drain"] = backlog(c)
        with psycopg.connect(c.conninfo(), autocommit=True) as conn:
            row = conn.execute("SELECT archived_count, failed_count FROM pg_stat_archiver")
            archived, failed = row.fetchone() or (0, 0)
        run["archived_segments"], run["failed"] = int(archived), int(failed)
        results["with_archiving"] = run
        # one wal-push, timed, with real segments of that run under new names
        segs = sorted(p for p in (c.datadir / "pg_wal").iterdir() if len(p.name) == 24)
        seg = segs[-2]
        scratch = base / "push"
        scratch.mkdir(mode=0o755)
        push_repo = base / "push-repo"
        Repository.open(str(push_repo), "main", create=True, owner=repository_owner())
        rt = runtime.wal_runtime(base / "home", user)
        names = [f"00000001000000FF000000{i:02X}" for i in range(10)]
        for n in names:
            shutil.copyfile(seg, scratch / n)
            os.chmod(scratch / n, 0o644)
        times = []
        for n in names:
            argv = [*rt.argv, "--repo", str(push_repo), "wal-push", str(scratch / n)]
            times += timed(argv, user, 1)
        python_pass = timed([sys.executable, "-c", "pass"], user)
        data = seg.read_bytes()
        t0 = time.perf_counter()
        comp = zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data)
        results["wal_push"] = {
            "runtime": rt.kind,
            "segment_bytes": len(data),
            "stored_bytes": len(comp),
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "max_s": round(max(times), 3),
            "python_c_pass_median_s": round(statistics.median(python_pass), 3),
            "zstd1_in_process_s": round(time.perf_counter() - t0, 3),
        }
    finally:
        c.destroy()
        shutil.rmtree(base, ignore_errors=True)
    results["machine"] = {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "postgres": 15, "load_avg_1m": round(os.getloadavg()[0], 2),
        "pgbench": f"-c 4 -j 2 -T {args.seconds}, scale 10, fsync on",
    }  # fmt: skip
    day = dt.date.today().isoformat()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{day}-archiving.json").write_text(json.dumps(results, indent=2) + "\n")
    w, a, p = results["without_archiving"], results["with_archiving"], results["wal_push"]
    md = f"""# Archiving benchmark, {day}

Machine: {results["machine"]["cpus"]} CPUs, Python {results["machine"]["python"]},
PostgreSQL 15; pgbench {results["machine"]["pgbench"]}. The machine is shared with other
work (1-minute load average at the end: {results["machine"]["load_avg_1m"]}).

| run | TPS | WAL generated | `.ready` at end | drained in | archived | failed |
|---|---:|---:|---:|---:|---:|---:|
| archiving off | {w["tps"]:.0f} | {w["wal_bytes"] / 2**20:.0f} MiB | - | - | - | - |
| archive_command = pgsafe wal-push | {a["tps"]:.0f} | {a["wal_bytes"] / 2**20:.0f} MiB | \
{a["ready_at_end"]} | {a["drain_s"]} s | {a["archived_segments"]} | {a["failed"]} |

One `wal-push` of a 16 MiB segment ({p["runtime"]} runtime, as the server's OS user,
process start to exit): median {p["median_s"]} s (min {p["min_s"]}, max {p["max_s"]});
`python -c pass`: {p["python_c_pass_median_s"]} s; zstd-1 of the segment in process:
{p["zstd1_in_process_s"]} s ({p["segment_bytes"]} -> {p["stored_bytes"]} bytes).
"""
    (args.out / f"{day}-archiving.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
