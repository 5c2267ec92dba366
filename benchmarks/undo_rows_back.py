"""Time from ``pgsafe undo`` to rows back in the live database (a measurement, not a test).

    .venv/bin/python benchmarks/undo_rows_back.py [--scale 50] [--out benchmarks/results/FILE.md]

Two cases, each on a cluster archiving into a fresh repository, with a base backup:

* the demo's data: ``transactions`` with 4 rows, every row deleted, a transaction 5
  after the mistake;
* pgbench at ``--scale`` (50: 5,000,000 accounts) with a DELETE of 10,000 accounts,
  then a little more pgbench traffic.

For each: the time of the WAL scan that validates the xid (``find_mistakes``), and the
whole undo (scan, throwaway recovery, plan, one transaction, clean-up), with the rows
checked afterwards.  The figures are written to ``--out`` (Markdown).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.mistakes.scan import MistakeRequest, find_mistakes
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.basebackup import backup
from pgsafe.physical.switch import switch_and_wait
from pgsafe.recovery.targets import TargetRequest
from pgsafe.repo.repository import Repository
from pgsafe.undo.model import UndoRequest
from pgsafe.undo.run import undo
from tests.archiving import committed_xid


def _cluster(base: Path, home: Path) -> tuple[LocalCluster, Repository]:
    repo = Repository.open(str(base / "repo"), "main", create=True, owner=repository_owner())
    settings = {"fsync": "off", "max_wal_size": "'2GB'", **archive_settings(repo, home)}
    c = LocalCluster(base / "live", settings=settings)
    c.initdb()
    c.start()
    return c, repo


def _measure(repo: Repository, ci: str, xid: int, check: str) -> dict[str, float | int | str]:
    t0 = time.perf_counter()
    report = find_mistakes(repo, MistakeRequest(conninfo=ci))
    scan = time.perf_counter() - t0
    assert any(m.xid == xid for m in report.mistakes), "the scan did not find the mistake"
    t0 = time.perf_counter()
    r = undo(repo, UndoRequest(TargetRequest("xid", str(xid)), ConnOptions(dbname=ci)))
    total = time.perf_counter() - t0
    with psycopg.connect(ci) as conn:
        row = conn.execute(check).fetchone()
    assert row is not None and row[0] is True, f"rows not back: {check}"
    return {
        "scan_s": round(scan, 2),
        "undo_s": round(total, 2),
        "rows_back": r.rows_back,
        "segments": report.segments,
    }


def demo_case(base: Path, home: Path) -> dict[str, float | int | str]:
    c, repo = _cluster(base / "demo", home)
    try:
        ci = c.conninfo()
        with psycopg.connect(ci, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE transactions (id int PRIMARY KEY, amount numeric(12,2),"
                " description text)"
            )
        backup(ci, repo, label="bench")
        with psycopg.connect(ci, autocommit=True) as conn:
            for i in range(1, 5):
                conn.execute("INSERT INTO transactions VALUES (%s, %s, %s)", (i, i * 10, f"t{i}"))
        xid = committed_xid(ci, "DELETE FROM transactions")
        committed_xid(ci, "INSERT INTO transactions VALUES (5, 50, 't5')")
        switch_and_wait(ci, repo)
        return _measure(
            repo, ci, xid, "SELECT array_agg(id ORDER BY id) = '{1,2,3,4,5}' FROM transactions"
        )
    finally:
        c.destroy()


def pgbench_case(base: Path, home: Path, scale: int) -> dict[str, float | int | str]:
    c, repo = _cluster(base / "pgbench", home)
    try:
        ci = c.conninfo()
        bench = c.program("pgbench")
        t0 = time.perf_counter()
        subprocess.run([bench, "-i", "-q", "-s", str(scale), ci], check=True, capture_output=True)
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        backup(ci, repo, label="bench")
        took = time.perf_counter() - t0
        xid = committed_xid(ci, "DELETE FROM pgbench_accounts WHERE aid BETWEEN 100001 AND 110000")
        subprocess.run([bench, "-n", "-c", "2", "-t", "2000", ci], check=True, capture_output=True)
        switch_and_wait(ci, repo, timeout=300)
        out = _measure(
            repo,
            ci,
            xid,
            "SELECT count(*) = 10000 FROM pgbench_accounts WHERE aid BETWEEN 100001 AND 110000",
        )
        return {**out, "scale": scale, "pgbench_init_s": round(load, 1), "backup_s": round(took, 1)}
    finally:
        c.destroy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/undo.md"))
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pgsafe-bench-undo-", dir="/tmp"))
    os.chmod(base, 0o755)
    home = base / "home"
    home.mkdir(mode=0o755)
    os.environ["PGSAFE_HOME"] = str(home)
    try:
        demo = demo_case(base, home)
        print("demo:", demo, flush=True)
        pgb = pgbench_case(base, home, args.scale)
        print("pgbench:", pgb, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    lines = [
        "# Time from `pgsafe undo` to rows back",
        "",
        f"`benchmarks/undo_rows_back.py --scale {args.scale}`, {time.strftime('%Y-%m-%d')}, "
        f"{platform.node()} ({os.cpu_count()} cores, shared with other sessions: figures are "
        "indicative), PostgreSQL on the host, posix repository, no compression.",
        "",
        "The undo time is everything: the WAL scan that validates the xid, restoring the base "
        "backup into a throwaway cluster, replaying WAL to just before the transaction, "
        "finding its rows (`xmax`), the plan, the one transaction in the live database, and "
        "removing the throwaway cluster.",
        "",
        "| case | rows back | WAL scan alone (s) | whole undo (s) |",
        "|---|---|---|---|",
        f"| demo (4 rows deleted, transaction 5 after) | {demo['rows_back']} | "
        f"{demo['scan_s']} | {demo['undo_s']} |",
        f"| pgbench scale {args.scale} (DELETE of 10,000 accounts, then 4,000 pgbench "
        f"transactions; init {pgb['pgbench_init_s']} s, base backup {pgb['backup_s']} s) | "
        f"{pgb['rows_back']} | {pgb['scan_s']} | {pgb['undo_s']} |",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
