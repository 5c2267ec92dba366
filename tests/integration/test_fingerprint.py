"""The data fingerprint (record-hash): what it proves, and the tables that fall back to text.

A restore that lost, duplicated or changed a row (or moved values between rows) must give
another fingerprint; a table whose column types have no stable hash (point, json, enum...)
still dumps, restores and verifies, through the text method."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.logical import fingerprint as fp
from pgsafe.logical.tables import Table, list_tables
from pgsafe.models.backup import TableFingerprint, TablePrints
from pgsafe.pg.programs import installed_major
from pgsafe.repo.repository import Repository
from tests.conftest import psql_exec, run_pgsafe, skip_if_dumps_rejected

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE TYPE pair_pt AS (a int, p point);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE plain(id int, name text, price numeric(10, 2), at timestamptz,
                   tags text[], span int4range, pr pair, d posint, doc jsonb, u uuid);
INSERT INTO plain SELECT g, 'n' || g, g * 1.5, '2026-01-01'::timestamptz + g * interval '1 h',
       ARRAY['a' || g, 'b'], int4range(g, g + 10), ROW(g, 'x' || g)::pair, g,
       jsonb_build_object('g', g), md5(g::text)::uuid
  FROM generate_series(1, 500) g;
CREATE TABLE "with point"(id int, p point, note text);
INSERT INTO "with point" SELECT g, point(g, -g), 'p' || g FROM generate_series(1, 50) g;
CREATE TABLE with_json(id int, j json, m mood, pp pair_pt);
INSERT INTO with_json SELECT g, json_build_object('k', g, 'v', 'x'), 'happy',
       ROW(g, point(g, g))::pair_pt
  FROM generate_series(1, 40) g;
CREATE TABLE t_col(t text, other int);  -- a column named like the row alias
INSERT INTO t_col VALUES ('same', 1), ('same', 2);
"""


@pytest.fixture(scope="module")
def db(pg: LocalCluster) -> str:
    name = "fp_types"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {name}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {name}")
    psql_exec(pg.conninfo(name), SCHEMA)
    return name


@pytest.fixture
def copy(pg: LocalCluster, db: str) -> Iterator[str]:
    """A scratch copy of ``db`` to damage."""
    name = "fp_types_copy"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {name}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {name} TEMPLATE {db}")
    yield name
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {name}")


def prints(conninfo: str, method: str = fp.NAMED) -> TablePrints:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return fp.fingerprint_existing(conn, list_tables(conn), method)


needs_record_hash = pytest.mark.skipif(
    installed_major() < 14,
    reason="the record method needs hash_record_extended, PostgreSQL 14's: a 13 server "
    "fingerprints every table through its text (the other tests here cover that)",
)


@needs_record_hash
def test_method_per_table(pg: LocalCluster, db: str) -> None:
    got = prints(pg.conninfo(db))
    assert {k: v.method for k, v in got.items()} == {
        "public.plain": "named-record",
        "public.with point": "named-text",  # point: no hash function
        "public.with_json": "named-text",  # json, an enum (hashed by OID), a composite w/ point
        "public.t_col": "named-record",
    }
    assert got["public.plain"].rows == 500 and got["public.with_json"].rows == 40
    old = prints(pg.conninfo(db), fp.METHOD)  # record-hash backups: as before
    assert {k: v.method for k, v in old.items()} == {
        "public.plain": "record",
        "public.with point": "text",
        "public.with_json": "text",
        "public.t_col": "record",
    }


@needs_record_hash
def test_type_decisions(pg: LocalCluster, db: str) -> None:
    ddl = {
        "int, text, numeric, bytea, date, interval": "record",
        "varchar(9), char(3), inet, cidr, macaddr, timetz, pg_lsn, float8": "record",
        "int[], text[][], int4multirange, tstzrange, pair[], posint[]": "record",
        "point": "text",
        "json": "text",
        "xml": "text",
        "money": "text",
        "mood": "text",
        "regclass": "text",
        "oidvector": "text",
        "tsvector": "text",
        "pair_pt[]": "text",
        'text COLLATE "nd"': "text",
        "int, text": "record",
    }
    with psycopg.connect(pg.conninfo(db), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS dec")
        try:
            conn.execute(
                "CREATE COLLATION IF NOT EXISTS nd"
                " (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
            )
        except psycopg.errors.FeatureNotSupported:  # a server built without ICU (the
            del ddl['text COLLATE "nd"']  # matrix's 16): no nondeterministic collation
        types = fp._Types(conn)
        for i, (cols, want) in enumerate(ddl.items()):
            defs = ", ".join(f"c{j} {c}" for j, c in enumerate(cols.split(", ")))
            conn.execute(f"CREATE TABLE IF NOT EXISTS dec.t{i}({defs})")
            got = "record" if types.row_hashable(Table("dec", f"t{i}")) else "text"
            assert got == want, cols
        # every table the catalogs call hashable really is (no fallback needed)
        for i in range(len(ddl)):
            conn.execute(f"SELECT hash_record_extended(t.*, 0) FROM dec.t{i} AS t")
        conn.execute("DROP SCHEMA dec CASCADE")


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE {t} SET {col} = {other} WHERE id = 7",  # a changed row
        "DELETE FROM {t} WHERE id = 7",  # a lost row
        "INSERT INTO {t} SELECT * FROM {t} WHERE id = 7",  # a duplicated row
        # a lost row and a duplicated one: the same count
        "DELETE FROM {t} WHERE id = 7; INSERT INTO {t} SELECT * FROM {t} WHERE id = 8",
        # values swapped between two rows: every column keeps the same values overall
        "UPDATE {t} SET {col} = CASE id WHEN 7 THEN (SELECT {col} FROM {t} WHERE id = 8)"
        " ELSE (SELECT {col} FROM {t} WHERE id = 7) END WHERE id IN (7, 8)",
    ],
    ids=["changed", "lost", "duplicated", "lost-and-duplicated", "swapped"],
)
@pytest.mark.parametrize("table", ["plain", "with point"], ids=["record", "text-fallback"])
def test_damage_is_detected(pg: LocalCluster, db: str, copy: str, damage: str, table: str) -> None:
    before = prints(pg.conninfo(copy))
    assert before == prints(pg.conninfo(db))
    col, other = ("name", "'changed'") if table == "plain" else ("note", "'changed'")
    psql_exec(pg.conninfo(copy), damage.format(t=f'"{table}"', col=col, other=other))
    after = prints(pg.conninfo(copy))
    key = f"public.{table}"
    checks = {c.table: c for c in fp.compare(before, after)}
    assert not checks[key].ok, (damage, before[key], after[key])
    assert all(c.ok for name, c in checks.items() if name != key)


def test_column_named_t_hashes_the_whole_row(pg: LocalCluster, copy: str) -> None:
    before = prints(pg.conninfo(copy))["public.t_col"]
    psql_exec(pg.conninfo(copy), "UPDATE t_col SET other = 3 WHERE other = 2")
    assert prints(pg.conninfo(copy))["public.t_col"] != before


@needs_record_hash
def test_old_methods_unchanged(pg: LocalCluster, db: str) -> None:
    """Backups recorded with an older method are fingerprinted exactly as they were."""
    with psycopg.connect(pg.conninfo(db), autocommit=True) as conn:
        fp.pin_settings(conn)
        row = conn.execute(
            "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM plain t"
        ).fetchone()
    old = prints(pg.conninfo(db), fp.TEXT)["public.plain"]
    assert old == TableFingerprint(rows=row[0], hash=row[1]) if row else False
    assert fp.method_of({}) == "md5"
    assert prints(pg.conninfo(db), "md5")["public.plain"].method is None
    # new dumps record named-hash whatever the major (each table records its own method)
    assert fp.method_for(13) == fp.NAMED and fp.method_for(15) == fp.NAMED
    with psycopg.connect(pg.conninfo(db), autocommit=True) as conn:
        fp.pin_settings(conn)
        row = conn.execute(
            "SELECT count(*), coalesce(sum(pg_catalog.hashint8extended(h, h)), 0)::text FROM"
            " (SELECT pg_catalog.hash_record_extended(t.*, 0) AS h FROM plain AS t OFFSET 0) s"
        ).fetchone()
    assert prints(pg.conninfo(db), fp.METHOD)["public.plain"] == TableFingerprint(
        rows=row[0] if row else None, hash=row[1] if row else None, method="record"
    )


@skip_if_dumps_rejected()
@needs_record_hash
def test_dump_restore_verify_with_unhashable_types(pg: LocalCluster, db: str, repo: Path) -> None:
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(db), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    shown = json.loads(run_pgsafe("--repo", str(repo), "show", doc["id"], "--json").stdout)
    assert shown["options"]["fingerprint_method"] == "named-hash"
    methods = {k: v["method"] for k, v in shown["fingerprint"][""].items()}
    assert methods["public.plain"] == "named-record"
    assert methods["public.with point"] == "named-text"

    target = "fp_types_restored"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    r = run_pgsafe(
        "--repo", str(repo), "restore", doc["id"], "--create", "-d", pg.conninfo(target), "--json"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    restored = json.loads(r.stdout)
    assert restored["ok"] is True and len(restored["checks"]) == 4
    v = run_pgsafe("--repo", str(repo), "verify", doc["id"], "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    assert json.loads(v.stdout)["ok"] is True
    # and a damaged restore is told apart from the backup
    psql_exec(pg.conninfo(target), "UPDATE plain SET price = price + 0.01 WHERE id = 3")
    stored = Repository.open(str(repo), "main").load(doc["id"]).fingerprint[""]
    checks = {c.table: c for c in fp.compare(stored, prints(pg.conninfo(target)))}
    assert not checks["public.plain"].ok and checks["public.plain"].detail().endswith("differs")
    assert checks["public.with point"].ok
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")


@pytest.mark.parametrize("old", [fp.METHOD, fp.TEXT, "md5"])
def test_backups_recorded_with_an_old_method_still_verify(
    pg: LocalCluster, db: str, repo: Path, old: str
) -> None:
    """A backup from before named-hash: its manifest records the old method and the
    fingerprints it gave; verify and restore compare with that method."""
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(db), "--json")
    assert r.returncode == 0, r.stderr
    backup = json.loads(r.stdout)["id"]
    store = Repository.open(str(repo), "main")
    m = store.load(backup)
    m.options["fingerprint_method"] = old
    m.options.pop("relations", None)  # nor did it record the table tree
    m.fingerprint = {"": prints(pg.conninfo(db), old)}
    store.save(m)
    v = run_pgsafe("--repo", str(repo), "verify", backup)
    assert v.returncode == 0, v.stdout + v.stderr
    # and a damaged table is still told apart with the old method
    m.fingerprint[""]["public.plain"] = replace(m.fingerprint[""]["public.plain"], hash="1")
    store.save(m)
    v = run_pgsafe("--repo", str(repo), "verify", backup)
    assert v.returncode == 3 and "✗ table public.plain" in v.stdout, v.stdout
