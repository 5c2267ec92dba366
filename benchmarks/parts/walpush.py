"""walpush — one 16 MiB segment, run as the server's OS user: pgsafe wal-push, pgBackRest
archive-push (lz4), cp, ``python3 -c pass``."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from benchmarks.contenders import floors
from benchmarks.harness.alternation import alternate, part_result
from benchmarks.harness.bench import Bench
from benchmarks.harness.db import q
from benchmarks.harness.files import fresh_dir
from benchmarks.harness.measure import Fn, measure
from pgsafe.cluster.local import LocalCluster
from pgsafe.endpoint import runtime


def run(bench: Bench, c: LocalCluster, pushes: int) -> dict[str, Any]:
    work = fresh_dir(bench.base / "walpush", bench.user)
    q(c, "SELECT pg_switch_wal()")
    q(c, "SELECT pg_switch_wal()")
    segs = sorted(p for p in (c.datadir / "pg_wal").iterdir() if len(p.name) == 24)
    seg = segs[-2]
    repo = work / "pgsafe-repo"
    bench.new_repo(repo)
    rt = runtime.wal_runtime(bench.base / "home", bench.user)
    cp_dest = fresh_dir(work / "cp", bench.user)
    names = iter(f"00000001000000FF{i:08X}" for i in range(100000))
    python3 = floors.python3()

    def copy() -> Path:
        name = next(names)
        dest = work / name
        shutil.copyfile(seg, dest)
        os.chmod(dest, 0o644)
        return dest

    def pgsafe_push(i: int) -> dict[str, Any]:
        s = copy()
        r = measure([*rt.argv, "--repo", str(repo), "wal-push", str(s)], user=bench.user)
        s.unlink()
        return r

    def pgbr_push(i: int) -> dict[str, Any]:
        assert bench.pgbr is not None
        s = copy()
        r = measure(bench.pgbr.argv("archive-push", str(s)), user=bench.user)
        s.unlink()
        return r

    def cp(i: int) -> dict[str, Any]:
        s = copy()
        r = measure(floors.copy(s, cp_dest / s.name), user=bench.user)
        s.unlink()
        return r

    def start_floor(i: int) -> dict[str, Any]:
        return measure(floors.python_start(), user=bench.user)

    contenders: list[tuple[str, Fn]] = [("pgsafe wal-push", pgsafe_push)]
    cmds = {"pgsafe wal-push": f"{shlex.join(rt.argv)} --repo R wal-push SEG ({rt.kind} runtime)"}
    if bench.pgbr:
        contenders.append(("pgBackRest archive-push", pgbr_push))
        cmds["pgBackRest archive-push"] = "pgbackrest --stanza=bench archive-push SEG (lz4)"
    contenders += [("cp", cp), ("python3 -c pass", start_floor)]
    cmds["cp"] = "cp SEG DIR/"
    cmds["python3 -c pass"] = f"{python3} -c pass"
    try:
        res = alternate(contenders, pushes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes = [
        f"{pushes} pushes per contender, each of a copy of one real 16 MiB segment "
        "under a new name, run as the server's OS user"
    ]
    return part_result(res, cmds, notes)
