"""backup — full physical backup: pgsafe backup, pg_basebackup -Ft (client-zstd:1 and -z),
pgBackRest full (lz4 and gz, process-max 2), and the floor: ``tar cf - PGDATA | cat``."""

from __future__ import annotations

import shutil
from typing import Any

from benchmarks.contenders import floors, postgres
from benchmarks.contenders.pgsafe import pgsafe_argv
from benchmarks.harness.alternation import alternate, part_result
from benchmarks.harness.bench import Bench
from benchmarks.harness.constants import STANZA
from benchmarks.harness.db import conn_args
from benchmarks.harness.files import fresh_dir, tree_bytes
from benchmarks.harness.measure import Fn, measure, with_server_cpu
from pgsafe.cluster.local import LocalCluster


def run(bench: Bench, c: LocalCluster, runs: int, *, full: bool = True) -> dict[str, Any]:
    out = fresh_dir(bench.base / "backup-out", None)
    cmds: dict[str, str] = {}

    def pgsafe_backup(i: int) -> dict[str, Any]:
        repo = out / f"pgsafe-{i}"
        bench.new_repo(repo)
        r = measure(pgsafe_argv("--repo", str(repo), "-q", "backup", *conn_args(c)), cwd=bench.base)
        r["out_bytes"] = tree_bytes(repo)
        shutil.rmtree(repo)
        return r

    def basebackup(flag: str) -> Fn:
        def run(i: int) -> dict[str, Any]:
            dest = out / f"bb-{i}"
            shutil.rmtree(dest, ignore_errors=True)
            r = measure(postgres.basebackup_tar(c, dest, flag), cwd=bench.base)
            r["out_bytes"] = tree_bytes(dest)
            shutil.rmtree(dest)
            return r

        return run

    def pgbackrest(kind: str) -> Fn:
        def run(i: int) -> dict[str, Any]:
            assert bench.pgbr is not None
            bench.pgbr.run("expire", "--repo1-retention-full=1")
            before = bench.pgbr.backups()
            r = measure(
                bench.pgbr.argv("--type=full", f"--compress-type={kind}", "backup"),
                user=bench.user,
            )
            new = bench.pgbr.backups() - before
            r["out_bytes"] = sum(tree_bytes(bench.pgbr.repo / "backup" / STANZA / n) for n in new)
            return r

        return run

    def floor(i: int) -> dict[str, Any]:
        return measure(floors.tar_read(c.datadir), ok=(0, 1))

    contenders: list[tuple[str, Fn]] = [("pgsafe backup", pgsafe_backup)]
    cmds["pgsafe backup"] = "pgsafe --repo R backup -d CONN (repository codec: zstd-3)"
    if full:
        contenders += [
            ("pg_basebackup -Ft client-zstd:1", basebackup("--compress=client-zstd:1")),
            ("pg_basebackup -Ft -z", basebackup("-z")),
        ]
        cmds["pg_basebackup -Ft client-zstd:1"] = (
            "pg_basebackup -D OUT -Ft -c fast --compress=client-zstd:1"
        )
        cmds["pg_basebackup -Ft -z"] = "pg_basebackup -D OUT -Ft -c fast -z"
        if bench.pgbr:
            contenders += [
                ("pgBackRest full lz4", pgbackrest("lz4")),
                ("pgBackRest full gz", pgbackrest("gz")),
            ]
            for k in ("lz4", "gz"):
                cmds[f"pgBackRest full {k}"] = (
                    f"pgbackrest --stanza=bench --type=full --compress-type={k} backup "
                    "(process-max=2, start-fast=y, as postgres)"
                )
        contenders.append(("tar floor", floor))
        cmds["tar floor"] = "tar cf - -C PGDATA . | cat > /dev/null"
    contenders = [(n, with_server_cpu(c.datadir, fn)) for n, fn in contenders]
    try:
        res = alternate(contenders, runs)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    notes = [
        "CPU s = the contender's own process tree; server CPU s = the server processes "
        "that ended with its run (walsender, backends: pg_basebackup's reading and "
        "pgsafe's server-side zstd happen there; pgBackRest reads the files itself)",
        "sizes: pgsafe = its repository folder (data tar with the backup's WAL, "
        "manifests, catalog); pg_basebackup = base.tar + pg_wal.tar; pgBackRest = "
        "the backup set's folder (the WAL it needs is in its archive, not counted)",
        "all contenders read a data directory that is in the page cache",
    ]
    return part_result(res, cmds, notes)
