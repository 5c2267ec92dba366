"""archiving — ``pgbench -c 4 -j 2 -T SECONDS`` with archive_command = pgsafe wal-push,
pgBackRest archive-push, /bin/true: TPS, WAL generated, ``.ready`` backlog at the end."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from typing import Any

from benchmarks.harness.alternation import alternate, part_result
from benchmarks.harness.bench import Bench
from benchmarks.harness.constants import DB, MB
from benchmarks.harness.db import backlog, conn_args, execute, psycopg_conn, q, wait_drained
from benchmarks.harness.files import fresh_dir
from benchmarks.harness.measure import Fn
from pgsafe.cluster.local import LocalCluster
from pgsafe.physical.archiving import archive_command_for


def run(bench: Bench, c: LocalCluster, runs: int, seconds: int) -> dict[str, Any]:
    work = fresh_dir(bench.base / "archiving", bench.user)
    home = bench.base / "home"
    restore_cmd = bench.pgbr.archive_command() if bench.pgbr else "/bin/true"

    def set_command(cmd: str) -> None:
        with contextlib.suppress(Exception):
            q(c, "SELECT pg_switch_wal()")
        wait_drained(c, 900)
        with psycopg_conn(c) as conn:
            conn.execute(
                f"ALTER SYSTEM SET archive_command = '{cmd.replace(chr(39), chr(39) * 2)}'"
            )
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)

    def load(cmd: str) -> dict[str, Any]:
        set_command(cmd)
        execute(c, "CHECKPOINT")
        q(c, "SELECT pg_stat_reset_shared('archiver')")
        lsn0 = q(c, "SELECT pg_current_wal_lsn()::text")
        proc = subprocess.run(
            [
                c.program("pgbench"),
                *conn_args(c)[:-2],
                "-c",
                "4",
                "-j",
                "2",
                "-T",
                str(seconds),
                "-n",
                DB,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        run: dict[str, Any] = {
            "tps": float(re.findall(r"tps = ([\d.]+)", proc.stdout)[-1]),
            "wal_mb": round(
                int(q(c, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn0}')::bigint")) / MB,
                1,
            ),
            "ready_at_end": backlog(c),
        }
        t0 = time.monotonic()
        q(c, "SELECT pg_switch_wal()")
        wait_drained(c, 900)
        run["drain_s"] = round(time.monotonic() - t0, 2)
        row = q(c, "SELECT archived_count || ',' || failed_count FROM pg_stat_archiver")
        run["archived"], run["failed"] = (int(x) for x in str(row).split(","))
        return run

    def pgsafe_run(i: int) -> dict[str, Any]:
        repo = bench.new_repo(work / f"pgsafe-{i}")
        try:
            return load(archive_command_for(home, repo, bench.user))
        finally:
            set_command("/bin/true")
            shutil.rmtree(work / f"pgsafe-{i}", ignore_errors=True)

    contenders: list[tuple[str, Fn]] = [("pgsafe wal-push", pgsafe_run)]
    cmds = {"pgsafe wal-push": "archive_command = pgsafe --repo R wal-push %p"}
    if bench.pgbr:
        pgbr = bench.pgbr
        contenders.append(("pgBackRest archive-push", lambda i: load(pgbr.archive_command())))
        cmds["pgBackRest archive-push"] = (
            "archive_command = pgbackrest --stanza=bench archive-push %p (lz4)"
        )
    contenders.append(("/bin/true", lambda i: load("/bin/true")))
    cmds["/bin/true"] = "archive_command = /bin/true"
    try:
        res = alternate(contenders, runs, rotate=True)
    finally:
        set_command(restore_cmd)
        shutil.rmtree(work, ignore_errors=True)
    notes = [
        f"pgbench -c 4 -j 2 -T {seconds} -n on the scale-{bench.args.scale} database, "
        "a CHECKPOINT before each run, the order rotated each round (A B C, B C A, "
        "C A B); ready_at_end = .ready files when pgbench ends, "
        "drain_s = time until none is left after a final pg_switch_wal"
    ]
    return part_result(res, cmds, notes)
