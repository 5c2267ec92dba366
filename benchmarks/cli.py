"""pgsafe side by side with pg_basebackup, pgBackRest and the physical floor.

    .venv/bin/python benchmarks/run.py [--scale 100] [--runs 3] [--scales 10,50,100,200]
        [--only backup,restore,walpush,archiving,logical,scaling] [--quick] [--out DIR]

(``make bench BENCH_ARGS="..."`` runs the same.)  One throwaway cluster (PostgreSQL
defaults, fsync on) holds a pgbench database of ``--scale``; every contender of a part
runs in turn, A B C A B C ..., ``--runs`` times, and each run is measured with
``/usr/bin/time``: wall clock, CPU (user + sys of the whole child tree), peak RSS (the
largest single process of that tree, GNU time's ``%M``) and the size of what it wrote.
The parts:

* backup — full physical backup: pgsafe backup, pg_basebackup -Ft (client-zstd:1 and
  -z), pgBackRest full (lz4 and gz, process-max 2), ``tar cf - PGDATA | cat`` (the floor;
  piped because GNU tar does not read the files when it writes to /dev/null itself);
* restore — into a new data directory, up to a consistent, readable server: pgsafe
  recover --immediate --start, pgBackRest restore --type=immediate + pg_ctl start -w,
  raw extraction of an uncompressed pg_basebackup tar (no recovery: the floor);
* walpush — one 16 MiB segment, run as the server's OS user: pgsafe wal-push,
  pgBackRest archive-push (lz4), cp, ``python3 -c pass``;
* archiving — ``pgbench -c 4 -j 2 -T 60`` with archive_command = pgsafe wal-push,
  pgBackRest archive-push, /bin/true: TPS, WAL generated, ``.ready`` backlog at the end;
* logical — pgsafe dump vs ``pg_dump -Fc``; pgsafe restore -j 2 vs ``pg_restore -j 2``;
  pgsafe verify vs a bare restore (initdb + start + pg_restore + stop);
* scaling — pgsafe backup and recover at each of ``--scales``.

pgBackRest is installed with apt-get when missing and we are root (not with
``--quick``); when it is not there its contenders are skipped with a note.  Results go
to ``<out>/<date>-<name>.json`` (machine, every run, medians, ratios, targets) and a
Markdown table beside it.  Everything runs on the loopback and unix sockets, in a folder
under /tmp that is removed at the end.

The code: ``harness/`` (clusters, timing, alternation), ``contenders/``, ``parts/`` (one
module per part), ``targets.py`` (the targets table), ``report.py`` (the results files).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.contenders.pgbackrest import PgBackRest, ensure_pgbackrest
from benchmarks.harness.bench import Bench
from benchmarks.harness.constants import DATA_SETS, GB_PER_SCALE, MB, PARTS
from benchmarks.harness.files import data_bytes
from benchmarks.harness.machine import ROOT, machine_info
from benchmarks.harness.measure import TIME, log
from benchmarks.parts import archiving, backup, logical, restore, scaling, walpush
from benchmarks.report import write
from pgsafe.cluster import runas
from pgsafe.pg.programs import find_program


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scales", default="10,50,100,200")
    ap.add_argument(
        "--data",
        choices=DATA_SETS,
        default="pgbench",
        help="pgbench only, or pgbench plus a table of random (incompressible) bytes and text",
    )
    ap.add_argument("--only", default=",".join(PARTS), help=f"parts among {','.join(PARTS)}")
    ap.add_argument("--seconds", type=int, default=60, help="pgbench -T of the archiving part")
    ap.add_argument("--pushes", type=int, default=10, help="wal-push runs per contender")
    ap.add_argument("--quick", action="store_true", help="smoke run: scale 1, 1 run, no load")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install pgbackrest")
    ap.add_argument(
        "--budget-min",
        type=float,
        default=0,
        help="scaling: start no new scale after this many minutes (0: no limit)",
    )
    ap.add_argument("--no-pgbackrest", action="store_true", help="leave pgBackRest out")
    ap.add_argument("--name", default=None, help="results file name (default bench / quick)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = set(args.parts) - set(PARTS)
    if bad:
        ap.error(f"unknown part(s) {', '.join(sorted(bad))}; choose among {', '.join(PARTS)}")
    args.scale_list = [int(s) for s in args.scales.split(",") if s.strip()]
    if args.quick:
        args.scale, args.runs, args.pushes, args.scale_list = 1, 1, 2, [1]
        args.parts = [p for p in args.parts if p != "archiving"]
    args.name = args.name or ("quick" if args.quick else "bench")
    if args.data != "pgbench" and not args.name.endswith(args.data):
        args.name += f"-{args.data}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.exists(TIME):
        raise SystemExit(f"{TIME} is missing: apt-get install time")
    for var in ("PGSAFE_REPO", "PGSAFE_CONFIG", "PGSAFE_COMPRESSION", "PGSAFE_ENCRYPTION"):
        os.environ.pop(var, None)
    t_start = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="pgsafe-bench-", dir="/tmp"))
    os.chmod(base, 0o755)
    (base / "home").mkdir(mode=0o755)
    os.environ["PGSAFE_HOME"] = str(base / "home")
    user = runas.server_user()
    b = Bench(args, base, user)
    doc: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "name": args.name,
        "command": "benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "scale": args.scale,
        "data": args.data,
        "runs": args.runs,
        "parts_selected": args.parts,
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "parts": {},
        "notes": b.notes,
    }
    b.doc = doc
    need = 3.5 * GB_PER_SCALE * args.scale * b.data_factor()
    free = shutil.disk_usage(base).free
    if free < need:
        raise SystemExit(f"{free / 2**30:.1f} GiB free under /tmp, about {need / 2**30:.1f} needed")
    if args.no_pgbackrest:
        have_pgbr = False
        b.notes.append("pgBackRest left out (--no-pgbackrest)")
    else:
        have_pgbr = ensure_pgbackrest(not (args.quick or args.no_install), b.notes)
    path = None
    try:
        main_parts = [p for p in args.parts if p != "scaling"]
        needs_main = bool(main_parts) or args.scale in args.scale_list
        if needs_main:
            log(f"main cluster, scale {args.scale}")
            c = b.main = b.cluster(
                "main",
                {"wal_level": "replica", "archive_mode": "on", "archive_command": "'/bin/true'"},
            )
            if have_pgbr:
                b.pgbr = PgBackRest(base / "pgbackrest", c, user)
                b.pgbr.setup()
                c.stop()
                c.configure({"archive_command": "'" + b.pgbr.archive_command() + "'"})
                c.start()
                b.pgbr.run("stanza-create")
            b.pgbench_init(c, args.scale)
            doc["machine"] = machine_info(base, c.program("postgres"))
            doc["data_dir_mb"] = round(data_bytes(c.datadir) / MB)
            scaling_from_main = args.scale in args.scale_list and "scaling" in args.parts
            for part in PARTS[:-1]:
                wanted = part in args.parts
                if part in ("backup", "restore") and scaling_from_main:
                    wanted = True
                if not wanted:
                    continue
                log(f"part: {part}")
                load0 = [round(x, 2) for x in os.getloadavg()]
                if part == "backup":
                    res = backup.run(b, c, args.runs)
                elif part == "restore":
                    res = restore.run(b, c, args.runs)
                elif part == "walpush":
                    res = walpush.run(b, c, args.pushes)
                elif part == "archiving":
                    res = archiving.run(b, c, args.runs, args.seconds)
                else:
                    res = logical.run(b, c, args.runs)
                res["load_before"], res["load_after"] = (
                    load0,
                    [round(x, 2) for x in os.getloadavg()],
                )
                doc["parts"][part] = res
                doc["load_after"] = res["load_after"]
                doc["elapsed_min"] = round((time.monotonic() - t_start) / 60, 1)
                path = write(doc, args.out)
            c.destroy()
            b.clusters.remove(c)
            if b.pgbr:
                shutil.rmtree(b.pgbr.root, ignore_errors=True)
        else:
            doc["machine"] = machine_info(base, find_program("postgres"))
        if "scaling" in args.parts:
            log("part: scaling")
            load0 = [round(x, 2) for x in os.getloadavg()]
            res = scaling.run(b, args.scale_list, args.runs)
            res["load_before"], res["load_after"] = load0, [round(x, 2) for x in os.getloadavg()]
            doc["parts"]["scaling"] = res
        doc["load_after"] = [round(x, 2) for x in os.getloadavg()]
        doc["elapsed_min"] = round((time.monotonic() - t_start) / 60, 1)
        path = write(doc, args.out)
    finally:
        for c in b.clusters:
            c.destroy()
        shutil.rmtree(base, ignore_errors=True)
    log(f"results: {path} and {path.with_suffix('.md')}")
    print(path.with_suffix(".md").read_text())
    return 0
