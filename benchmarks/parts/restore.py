"""restore — into a new data directory, up to a consistent, readable server: pgsafe recover
--immediate --start, pgBackRest restore --type=immediate + pg_ctl start -w, and the floor:
extraction of an uncompressed pg_basebackup tar (no recovery)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.contenders import floors, postgres
from benchmarks.contenders.pgsafe import pgsafe_argv
from benchmarks.harness.alternation import alternate, part_result
from benchmarks.harness.bench import Bench
from benchmarks.harness.db import conn_args
from benchmarks.harness.files import fresh_dir, tree_bytes
from benchmarks.harness.measure import Fn, log, measure, shell
from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port


def run(bench: Bench, c: LocalCluster, runs: int, *, full: bool = True) -> dict[str, Any]:
    work = fresh_dir(bench.base / "restore", None)
    repo = work / "pgsafe-repo"
    bench.new_repo(repo)
    log("restore: one pgsafe backup to restore from")
    subprocess.run(
        pgsafe_argv("--repo", str(repo), "-q", "backup", *conn_args(c)),
        check=True,
        capture_output=True,
        cwd=bench.base,
    )
    cmds = {"pgsafe recover": "pgsafe --repo R recover --pgdata NEW --immediate --start"}
    tar_src = work / "tar"
    contenders: list[tuple[str, Fn]] = []

    def target(i: int, who: str) -> Path:
        d = work / f"{who}-{i}"
        bench.stop_leftover(d)
        return d

    def pgsafe_recover(i: int) -> dict[str, Any]:
        d = target(i, "pgsafe")
        try:
            r = measure(
                pgsafe_argv(
                    "--repo",
                    str(repo),
                    "-q",
                    "recover",
                    "--pgdata",
                    str(d),
                    "--immediate",
                    "--start",
                    "--port",
                    str(free_port()),
                ),
                cwd=bench.base,
            )
            r["out_bytes"] = tree_bytes(d)
        finally:
            bench.stop_leftover(d)
        return r

    def pgbackrest_restore(i: int) -> dict[str, Any]:
        assert bench.pgbr is not None
        d = target(i, "pgbr")
        fresh_dir(d, bench.user, 0o700)
        sock = fresh_dir(work / "pgbr-sock", bench.user)
        try:
            start = shlex.join(
                [
                    c.program("pg_ctl"),
                    "-D",
                    str(d),
                    "-w",
                    "-t",
                    "3600",
                    "-l",
                    str(sock / f"pgbr-{i}.log"),
                    "-o",
                    f"-p {free_port()} -k {sock} -c listen_addresses=''",
                    "start",
                ]
            )
            restore = shlex.join(
                bench.pgbr.argv(
                    f"--pg1-path={d}", "--type=immediate", "--target-action=pause", "restore"
                )
            )
            r = measure(shell(f"{restore} && {start}"), user=bench.user)
            r["out_bytes"] = tree_bytes(d)
        finally:
            bench.stop_leftover(d)
        return r

    def tar_extract(i: int) -> dict[str, Any]:
        d = target(i, "tar")
        fresh_dir(d, bench.user, 0o700)
        try:
            r = measure(floors.tar_extract(tar_src / "base.tar", d), user=bench.user)
            r["out_bytes"] = tree_bytes(d)
        finally:
            bench.stop_leftover(d)
        return r

    contenders.append(("pgsafe recover", pgsafe_recover))
    if full and bench.pgbr:
        bench.pgbr.run("expire", "--repo1-retention-full=1")
        if not bench.pgbr.backups():
            bench.pgbr.run("--type=full", "--compress-type=lz4", "backup")
        contenders.append(("pgBackRest restore", pgbackrest_restore))
        cmds["pgBackRest restore"] = (
            "pgbackrest --stanza=bench --pg1-path=NEW --type=immediate --target-action=pause"
            " restore && pg_ctl -D NEW -w start (process-max=2, lz4 backup, as postgres)"
        )
    if full:
        log("restore: an uncompressed pg_basebackup tar for the extraction floor")
        fresh_dir(tar_src, bench.user)
        subprocess.run(
            postgres.basebackup_tar(c, tar_src, "-X", "fetch"), check=True, capture_output=True
        )
        os.chmod(tar_src / "base.tar", 0o644)
        contenders.append(("tar extraction", tar_extract))
        cmds["tar extraction"] = "tar xf base.tar -C NEW (uncompressed, WAL inside; no recovery)"
    try:
        res = alternate(contenders, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes = [
        "pgsafe and pgBackRest: timed until the restored server accepts connections "
        "(hot standby, consistent, paused at the end of the backup); the tar floor is "
        "extraction only",
        "out_bytes: size of the restored data directory",
    ]
    return part_result(res, cmds, notes)
