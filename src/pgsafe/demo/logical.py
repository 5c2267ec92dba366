"""Part one of the demo: logical backups, loss, restores and verification.

On the sandbox: the exercise's ``ecommerce`` database with ``important_data``; a
plain, a custom, a single-table and an all-databases backup; the contents listed;
the data lost twice (DELETE, then DROP TABLE) and restored; a copy restored into
``ecommerce_restored``; every backup verified in a throwaway cluster.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import sql

from pgsafe.demo.report import DemoReport
from pgsafe.logical import contents, dump, restore
from pgsafe.models.backup import JsonObject
from pgsafe.pg.connect import connect
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.repo.repository import Repository
from pgsafe.verify.logical import verify_logical

DB = "ecommerce"
RESTORED = "ecommerce_restored"
ROWS = 1000

_SCHEMA = """
CREATE TABLE important_data (
    id          serial PRIMARY KEY,
    customer    text NOT NULL,
    amount      numeric(10, 2) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX important_data_customer ON important_data (customer);
INSERT INTO important_data (customer, amount, created_at)
SELECT 'customer ' || (g % 97), round((g * 7.31)::numeric % 500, 2),
       timestamptz '2024-01-15 10:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, %(rows)s) g;
"""


def _count(conninfo: str) -> int | None:
    with connect(conninfo) as conn:
        exists = conn.execute("SELECT to_regclass('public.important_data')").fetchone()
        if not exists or exists[0] is None:
            return None
        row = conn.execute("SELECT count(*) FROM important_data").fetchone()
        return int(row[0]) if row else 0


def _recreate(admin: str, *names: str) -> None:
    with connect(admin) as conn:
        for n in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(n))
            )


def run(report: DemoReport, repo: Repository, base: ConnOptions, home: Path) -> JsonObject:
    """Part one, step by step, as the report shows it; returns the ids it made.

    Long because it is the demo's script: each step uses what the steps before made,
    and it reads top to bottom as the report prints it."""
    admin = base.conninfo("postgres")
    shop = base.conninfo(DB)
    report.section("Part 1 — logical backups")
    _recreate(admin, DB, RESTORED)
    with connect(admin) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    with connect(shop) as conn:
        conn.execute(_SCHEMA.replace("%(rows)s", str(ROWS)))
    report.step(f"created database {DB} with table important_data ({ROWS} rows)")

    conn_opts = ConnOptions(dbname=shop)
    ids: dict[str, str] = {}
    for label, req in (
        ("plain", dump.DumpRequest(conn=conn_opts, format="plain", label="demo plain")),
        ("custom", dump.DumpRequest(conn=conn_opts, format="custom", label="demo custom")),
        (
            "single-table",
            dump.DumpRequest(conn=conn_opts, tables=("important_data",), label="demo single table"),
        ),
        (
            "all-databases",
            dump.DumpRequest(
                conn=ConnOptions(dbname=admin), all_databases=True, label="demo all databases"
            ),
        ),
    ):
        m = dump.dump(repo, req)
        ids[label] = m.id
        report.check(
            f"{label} backup taken", m.status == "ok", f"{m.id}, {m.size_bytes} bytes stored"
        )

    listing = contents.contents(repo, repo.load(ids["custom"]))
    data_entries = [ln for ln in listing if "TABLE DATA" in ln]
    report.step(f"contents of the custom backup: {len(listing)} entries, e.g.")
    for ln in listing[:4]:
        report.step(f"    {ln}")
    report.check(
        "custom backup lists important_data", any("important_data" in ln for ln in data_entries)
    )

    report.section("Loss 1 — every row deleted")
    with connect(shop) as conn:
        conn.execute("DELETE FROM important_data")
    report.step(f"DELETE FROM important_data → {_count(shop)} rows left")
    res = restore.restore(
        repo, restore.RestoreRequest(backup=repo.load(ids["custom"]), conn=conn_opts, clean=True)
    )
    n = _count(shop)
    report.check(
        "restore --clean from the custom backup",
        res.ok and n == ROWS,
        f"{n} rows back, fingerprints {'match' if res.ok else 'DIFFER'}",
    )

    report.section("Loss 2 — the table dropped")
    with connect(shop) as conn:
        conn.execute("DROP TABLE important_data")
    report.step(f"DROP TABLE important_data → table exists: {_count(shop) is not None}")
    res = restore.restore(
        repo,
        restore.RestoreRequest(
            backup=repo.load(ids["single-table"]), conn=conn_opts, tables=("important_data",)
        ),
    )
    n = _count(shop)
    with connect(shop) as conn:
        idx = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'important_data'"
        ).fetchone()
    report.check(
        "restore -t important_data from the single-table backup",
        res.ok and n == ROWS and bool(idx and idx[0] == 2),
        f"{n} rows, {idx[0] if idx else 0} indexes back",
    )

    report.section(f"Restore into a new database {RESTORED}")
    res = restore.restore(
        repo,
        restore.RestoreRequest(
            backup=repo.load(ids["custom"]),
            conn=ConnOptions(dbname=base.conninfo(RESTORED)),
            create=True,
        ),
    )
    n = _count(base.conninfo(RESTORED))
    report.check(f"restore --create -d {RESTORED}", res.ok and n == ROWS, f"{n} rows")

    report.section("Verification — each backup restored into a throwaway cluster")
    for label, bid in ids.items():
        v = verify_logical(repo, repo.load(bid), home)
        tables = [c for c in v.checks if c.name.startswith("table ")]
        detail = f"{len(tables)} tables compared, {v.duration_s:.1f} s"
        if not v.ok:
            detail = "; ".join(f"{c.name}: {c.detail}" for c in v.checks if not c.ok)
        report.check(f"verify {label} backup", v.ok, detail)
    return {"backups": ids}
