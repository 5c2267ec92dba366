"""Restore to the first fast query, with and without planner statistics (PostgreSQL 18+).

    python benchmarks/statistics_restore.py [--orders N] [--runs R] [--out FILE.md]

A shop database (orders with a skewed status and a timestamp, items per order) is dumped
twice with pgsafe: with planner statistics (the default from PostgreSQL 18, ``pg_dump
--statistics``) and with ``--no-statistics``.  Each round, alternating, restores each
dump into a new database (``pgsafe restore --create``) and times, from the start of the
restore: the first run of each query as the restored database plans it; for the dump
without statistics also ``ANALYZE`` and the queries after it.  "First fast query" is the
restore plus whatever the database needs before the queries run at their analyzed speed:
nothing with statistics, ``ANALYZE`` without (or the slow plans until autovacuum gets
there).  Autovacuum stays on, as in production; it did not analyze within the rounds
(each round checks ``pg_stat_user_tables`` and says so if it did).  Run as root, on the
server's major (in the PostgreSQL 18 chroot: ``scripts/pg-chroot.sh 18 run``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from pgsafe.cluster.local import LocalCluster

QUERIES = {
    "recent orders (range on an indexed timestamp, 0.1 % of rows)": (
        "SELECT count(*), sum(total) FROM orders WHERE placed_at > '2026-01-01'::timestamptz"
        " - interval '9 hours'"
    ),
    "open orders' items (skewed status, join)": (
        "SELECT count(*) FROM orders o JOIN items i ON i.order_id = o.id"
        " WHERE o.status = 'open' AND i.kind = 'gift'"
    ),
}
SETUP = """
CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, placed_at timestamptz NOT NULL,
                     total numeric(10, 2) NOT NULL);
INSERT INTO orders
SELECT g, CASE WHEN g % 500 = 0 THEN 'open' ELSE 'done' END,
       '2026-01-01'::timestamptz - (g * interval '1 second') * 37, (g % 997) / 7.0
  FROM generate_series(1, {orders}) g;
CREATE INDEX orders_placed_at ON orders (placed_at);
CREATE INDEX orders_status ON orders (status);
CREATE TABLE items (order_id bigint NOT NULL REFERENCES orders, kind text NOT NULL, qty int);
INSERT INTO items
SELECT o, CASE WHEN (o + k) % 200 = 0 THEN 'gift' ELSE 'std' END, k
  FROM generate_series(1, {orders}) o, generate_series(1, 3) k;
CREATE INDEX items_order ON items (order_id);
ANALYZE;
"""


@dataclass
class Round:
    restore_s: float
    first_query_s: dict[str, float]
    analyze_s: float = 0.0
    after_analyze_s: dict[str, float] = field(default_factory=dict)
    autovacuum_analyzed: bool = False


def pgsafe(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pgsafe", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"pgsafe {args[2] if len(args) > 2 else ''}: {proc.stderr.strip()}")
    return proc.stdout


def timed(conninfo: str, sql: str) -> float:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        t0 = time.perf_counter()
        cur = conn.execute(sql)
        if cur.description is not None:  # ANALYZE returns no rows
            cur.fetchall()
        return time.perf_counter() - t0


def one_round(c: LocalCluster, repo: Path, backup_id: str, target: str, analyze: bool) -> Round:
    with psycopg.connect(c.conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {target}")
    t0 = time.perf_counter()
    pgsafe("--repo", str(repo), "restore", backup_id, "-d", c.conninfo(target), "--create")
    r = Round(time.perf_counter() - t0, {})
    for name, sql in QUERIES.items():
        r.first_query_s[name] = timed(c.conninfo(target), sql)
    with psycopg.connect(c.conninfo(target), autocommit=True) as conn:
        row = conn.execute(
            "SELECT bool_or(last_autoanalyze IS NOT NULL) FROM pg_stat_user_tables"
        ).fetchone()
        r.autovacuum_analyzed = bool(row and row[0])
    if analyze:
        r.analyze_s = timed(c.conninfo(target), "ANALYZE")
        for name, sql in QUERIES.items():
            r.after_analyze_s[name] = timed(c.conninfo(target), sql)
    return r


def med(values: list[float]) -> float:
    return statistics.median(values)


def report(
    c: LocalCluster,
    orders: int,
    size: str,
    source: dict[str, float],
    rounds: dict[str, list[Round]],
) -> str:
    w, wo = rounds["with"], rounds["without"]
    lines = [
        f"# Restore to the first fast query: planner statistics in the dump, PostgreSQL {c.major}",
        "",
        f"`python benchmarks/statistics_restore.py --orders {orders} --runs {len(w)}`"
        " (as root in the PostgreSQL 18 chroot, `scripts/pg-chroot.sh 18 run`); "
        f"{orders} orders and {3 * orders} items, database {size}; medians of {len(w)} "
        "alternating rounds on the shared 2-core machine (noisy: read ratios, not"
        " milliseconds). Each round restores the dump into a new database "
        "(`pgsafe restore --create`), then runs each query once.",
        "",
        "| query | source (analyzed) | restored with statistics | restored without |"
        " without, after ANALYZE |",
        "|---|---|---|---|---|",
    ]
    for name in QUERIES:
        lines.append(
            f"| {name} | {source[name] * 1000:.0f} ms "
            f"| {med([r.first_query_s[name] for r in w]) * 1000:.0f} ms "
            f"| {med([r.first_query_s[name] for r in wo]) * 1000:.0f} ms "
            f"| {med([r.after_analyze_s[name] for r in wo]) * 1000:.0f} ms |"
        )
    restore_w, restore_wo = med([r.restore_s for r in w]), med([r.restore_s for r in wo])
    analyze = med([r.analyze_s for r in wo])
    fast_w = restore_w + sum(med([r.first_query_s[n] for r in w]) for n in QUERIES)
    fast_wo = restore_wo + analyze + sum(med([r.after_analyze_s[n] for r in wo]) for n in QUERIES)
    slow_wo = restore_wo + sum(med([r.first_query_s[n] for r in wo]) for n in QUERIES)
    autovac = sum(r.autovacuum_analyzed for r in [*w, *wo])
    lines += [
        "",
        "| restore to the queries answered at analyzed speed | seconds |",
        "|---|---|",
        f"| with statistics: restore {restore_w:.2f} s + the queries | {fast_w:.2f} |",
        f"| without: restore {restore_wo:.2f} s + ANALYZE {analyze:.2f} s + the queries"
        f" | {fast_wo:.2f} |",
        f"| without, no ANALYZE (the queries as first planned) | {slow_wo:.2f} |",
        "",
        f"Autovacuum analyzed a restored table before the queries in {autovac} of "
        f"{len(w) + len(wo)} restores.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="the Markdown figures (else stdout)")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pgsafe-bench-stats-", dir="/tmp"))
    base.chmod(0o755)
    c = LocalCluster(base / "pg", settings={"max_wal_size": "'1GB'"})
    try:
        c.initdb()
        c.start()
        if c.major < 18:
            raise SystemExit(f"PostgreSQL {c.major}: pg_dump --statistics needs 18")
        with psycopg.connect(c.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(c.conninfo("shop"), autocommit=True) as conn:
            conn.execute(SETUP.format(orders=a.orders).encode())
            row = conn.execute("SELECT pg_size_pretty(pg_database_size('shop'))").fetchone()
            size = str(row[0]) if row else "?"
        source = {
            n: min(timed(c.conninfo("shop"), q) for _ in range(3)) for n, q in QUERIES.items()
        }
        repo = base / "repo"
        ids = {
            "with": json.loads(
                pgsafe("--repo", str(repo), "--json", "dump", "-d", c.conninfo("shop"))
            )["id"],
            "without": json.loads(
                pgsafe(
                    "--repo",
                    str(repo),
                    "--json",
                    "dump",
                    "-d",
                    c.conninfo("shop"),
                    "--no-statistics",
                )
            )["id"],
        }
        rounds: dict[str, list[Round]] = {"with": [], "without": []}
        for i in range(a.runs):
            order = ["with", "without"] if i % 2 == 0 else ["without", "with"]
            for kind in order:
                r = one_round(c, repo, ids[kind], f"shop_{kind}", analyze=kind == "without")
                rounds[kind].append(r)
                print(f"round {i + 1} {kind}: {r}", file=sys.stderr)
        text = report(c, a.orders, size, source, rounds)
        if a.out:
            a.out.write_text(text)
        print(text)
    finally:
        c.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
