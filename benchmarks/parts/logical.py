"""logical — pgsafe dump vs ``pg_dump -Fc``; pgsafe restore -j 2 vs ``pg_restore -j 2``;
pgsafe verify vs a bare restore (initdb + start + pg_restore + stop)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from typing import Any

from benchmarks.contenders import postgres
from benchmarks.contenders.pgsafe import pgsafe_argv
from benchmarks.harness.alternation import alternate, part_result
from benchmarks.harness.bench import Bench
from benchmarks.harness.db import conn_args, execute
from benchmarks.harness.files import fresh_dir, tree_bytes
from benchmarks.harness.measure import log, measure, shell
from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port
from pgsafe.cluster.throwaway import FAST_SETTINGS


def run(bench: Bench, c: LocalCluster, runs: int) -> dict[str, Any]:
    work = fresh_dir(bench.base / "logical", bench.user)
    cmds: dict[str, str] = {}
    last: dict[str, Any] = {}

    def pgsafe_dump(i: int) -> dict[str, Any]:
        repo = work / f"pgsafe-{i}"
        bench.new_repo(repo)
        r = measure(
            pgsafe_argv("--repo", str(repo), "--json", "dump", *conn_args(c)), cwd=bench.base
        )
        r["out_bytes"] = tree_bytes(repo)
        old = last.get("repo")
        if old:
            shutil.rmtree(old, ignore_errors=True)
        last["repo"], last["id"] = repo, json.loads(r["stdout"])["id"]
        return r

    def pg_dump(i: int) -> dict[str, Any]:
        f = work / "pg_dump.dump"
        r = measure(postgres.dump_custom(c, f), cwd=bench.base)
        os.chmod(f, 0o644)
        r["out_bytes"] = f.stat().st_size
        return r

    def drop(db: str) -> None:
        execute(c, f'DROP DATABASE IF EXISTS "{db}"')

    def pgsafe_restore(i: int) -> dict[str, Any]:
        db = f"bench_pgsafe_{i}"
        drop(db)
        try:
            return measure(
                pgsafe_argv(
                    "--repo",
                    str(last["repo"]),
                    "-q",
                    "restore",
                    last["id"],
                    "--create",
                    "-j",
                    "2",
                    *conn_args(c, db),
                ),
                cwd=bench.base,
            )
        finally:
            drop(db)

    def pg_restore(i: int) -> dict[str, Any]:
        db = f"bench_pgr_{i}"
        drop(db)
        conn = shlex.join(conn_args(c)[:-2])
        try:
            return measure(
                shell(
                    f"{c.program('createdb')} {conn} {db} && {c.program('pg_restore')} {conn} "
                    f"-d {db} -j 2 {work / 'pg_dump.dump'}"
                ),
                cwd=bench.base,
            )
        finally:
            drop(db)

    def pgsafe_verify(i: int) -> dict[str, Any]:
        return measure(
            pgsafe_argv("--repo", str(last["repo"]), "-q", "verify", last["id"]), cwd=bench.base
        )

    def bare(i: int) -> dict[str, Any]:
        d = work / f"bare-{i}"
        bench.stop_leftover(d)
        conf = " ".join(f"-c {k}={v.strip(chr(39))}" for k, v in FAST_SETTINGS.items())
        port = free_port()
        prog = c.program
        quiet = " --no-instructions" if c.major >= 14 else ""  # 13's initdb has none
        script = (
            f"{prog('initdb')} -D {d} -U postgres --auth-local=trust -E UTF8 "
            f"--locale=C.UTF-8 --data-checksums{quiet} >/dev/null && "
            f'{prog("pg_ctl")} -D {d} -l {d}.log -w -o "-p {port} -k {work} '
            f"-c listen_addresses='' {conf}\" start >/dev/null && "
            f"{prog('pg_restore')} -h {work} -p {port} -U postgres -d postgres "
            f"{work / 'pg_dump.dump'} && {prog('pg_ctl')} -D {d} -m fast -w stop >/dev/null"
        )
        try:
            return measure(shell(script), user=bench.user)
        finally:
            bench.stop_leftover(d)

    out: dict[str, Any] = {}
    try:
        log("logical: dump")
        res = alternate([("pgsafe dump", pgsafe_dump), ("pg_dump -Fc", pg_dump)], runs)
        cmds["pgsafe dump"] = "pgsafe --repo R dump -d CONN (custom format, zstd-3, fingerprints)"
        cmds["pg_dump -Fc"] = "pg_dump -Fc -f OUT -d CONN (gzip level 6 inside)"
        out["dump"] = part_result(
            res, cmds, ["out_bytes: pgsafe = its repository folder; pg_dump = the .dump file"]
        )
        log("logical: restore -j 2")
        res = alternate(
            [("pgsafe restore -j 2", pgsafe_restore), ("pg_restore -j 2", pg_restore)], runs
        )
        out["restore"] = part_result(
            res,
            {
                "pgsafe restore -j 2": (
                    "pgsafe restore ID --create -d NEWDB -j 2 (with fingerprint check)"
                ),
                "pg_restore -j 2": "createdb NEWDB && pg_restore -j 2 -d NEWDB pg_dump.dump",
            },
            [],
        )
        log("logical: verify")
        res = alternate([("pgsafe verify", pgsafe_verify), ("bare restore", bare)], runs)
        out["verify"] = part_result(
            res,
            {
                "pgsafe verify": "pgsafe verify ID (checksums, throwaway cluster, pg_restore, "
                "fingerprints)",
                "bare restore": "initdb + pg_ctl start (same fast settings) + pg_restore "
                "(1 job, as verify) + pg_ctl stop",
            },
            [],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
