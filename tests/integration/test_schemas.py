"""Logical backups of schemas with partitions, inheritance, reordered columns, matviews.

Each test compares with an independent per-table content hash (md5 of the sorted row
texts, ``FROM ONLY``), never with pgsafe's own fingerprint alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, query, run_pgsafe, skip_if_dumps_rejected

SCHEMA = """
CREATE TABLE prt1 (a int, b int, c text) PARTITION BY RANGE (a);
CREATE TABLE prt1_p1 PARTITION OF prt1 FOR VALUES FROM (0) TO (100) PARTITION BY LIST (b);
CREATE TABLE prt1_p1_a PARTITION OF prt1_p1 FOR VALUES IN (1, 2);
CREATE TABLE prt1_p1_def PARTITION OF prt1_p1 DEFAULT;
CREATE TABLE prt1_p2 PARTITION OF prt1 FOR VALUES FROM (100) TO (200) PARTITION BY HASH (b);
CREATE TABLE prt1_p2_h0 PARTITION OF prt1_p2 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE prt1_p2_h1 PARTITION OF prt1_p2 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE prt1_def PARTITION OF prt1 DEFAULT;
CREATE INDEX ON prt1 (a);
INSERT INTO prt1 SELECT g % 300, g % 5, 'r' || g FROM generate_series(1, 600) g;
CREATE TABLE a_star (class char, a int4);
CREATE TABLE b_star (b text) INHERITS (a_star);
CREATE TABLE c_star (c name) INHERITS (a_star);
CREATE TABLE d_star (d float8) INHERITS (b_star, c_star);
INSERT INTO a_star VALUES ('a', 1), ('a', 2);
INSERT INTO b_star VALUES ('b', 3, 'x');
INSERT INTO c_star VALUES ('c', 4, 'y'), ('c', 5, 'yy');
INSERT INTO d_star VALUES ('d', 6, 'z', 'w', 1.5);
CREATE TABLE par (x int, y text);
CREATE TABLE kid (z int) INHERITS (par);
ALTER TABLE par ADD COLUMN w int;  -- kid is (x, y, z, w); pg_dump recreates it as (x, y, w, z)
INSERT INTO kid VALUES (1, 'k', 2, 3), (4, 'l', 5, 6);
CREATE TABLE other (id int PRIMARY KEY, v text);
INSERT INTO other SELECT g, 'o' || g FROM generate_series(1, 50) g;
CREATE DOMAIN posint AS int;
-- a NOT VALID constraint is dumped on its own: with --clean, pg_dump would write
-- ALTER DOMAIN ... DROP CONSTRAINT IF EXISTS, which fails where the domain is missing
ALTER DOMAIN posint ADD CONSTRAINT posint_check CHECK (VALUE > 0) NOT VALID;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE feelings (id posint, m mood);
INSERT INTO feelings VALUES (1, 'sad'), (2, 'happy');
CREATE MATERIALIZED VIEW mv AS SELECT class, count(*) AS n FROM a_star GROUP BY class;
CREATE MATERIALIZED VIEW mv_empty AS SELECT * FROM other WITH NO DATA;
"""


def relations(conninfo: str) -> list[str]:
    rows = query(
        conninfo,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') AND n.nspname = 'public'"
        " AND (c.relkind = 'r' OR c.relispopulated) ORDER BY 1",
    )
    return [str(r[0]) for r in rows]


def contents(conninfo: str) -> dict[str, tuple[int, str]]:
    """Per table (FROM ONLY): row count and md5 of the sorted rows, columns by name."""
    out = {}
    for rel in relations(conninfo):
        cols = query(
            conninfo,
            f"SELECT string_agg(format('t.%I', attname), ', ' ORDER BY attname) FROM pg_attribute"
            f" WHERE attrelid = '{rel}'::regclass AND attnum > 0 AND NOT attisdropped",
        )[0][0]
        row = query(
            conninfo,
            f"SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), ''))"
            f" FROM (SELECT ROW({cols})::text AS r FROM ONLY {rel} t) s",
        )[0]
        out[rel] = (int(str(row[0])), str(row[1]))
    return out


@pytest.fixture
def db(pg: LocalCluster) -> str:
    name = "schemas"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {name}")
    psql_exec(pg.conninfo(name), SCHEMA)
    return name


def dump(repo: Path, conninfo: str, *args: str) -> dict[str, object]:
    r = run_pgsafe("--repo", str(repo), "--json", "dump", "-d", conninfo, *args)
    assert r.returncode == 0, r.stderr
    backup = json.loads(r.stdout)["id"]
    r = run_pgsafe("--repo", str(repo), "--json", "show", backup)
    shown: dict[str, object] = json.loads(r.stdout)
    return shown


def pgsafe(repo: Path, *args: str) -> tuple[int, str]:
    r = run_pgsafe("--repo", str(repo), *args)
    return r.returncode, r.stdout + r.stderr


@skip_if_dumps_rejected()
def test_restore_partitioned_table_clean_replaces_each_partition(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    before = contents(pg.conninfo(db))
    m = dump(repo, pg.conninfo(db))
    psql_exec(
        pg.conninfo(db),
        "DELETE FROM prt1 WHERE a < 50; UPDATE prt1 SET c = 'changed' WHERE a > 250;"
        "INSERT INTO other VALUES (1000, 'after the dump'); DELETE FROM ONLY a_star;",
    )
    changed = contents(pg.conninfo(db))
    rc, out = pgsafe(repo, "restore", str(m["id"]), "-d", pg.conninfo(db), "-t", "prt1", "--clean")
    assert rc == 0, out
    after = contents(pg.conninfo(db))
    partitions = ["prt1_p1_a", "prt1_p1_def", "prt1_p2_h0", "prt1_p2_h1", "prt1_def"]
    for p in partitions:
        assert after[f"public.{p}"] == before[f"public.{p}"], p
        assert f"public.{p}" in out  # the plan names it
    for rel in set(after) - {f"public.{p}" for p in partitions}:
        assert after[rel] == changed[rel], f"{rel} changed though the plan did not list it"
    assert query(pg.conninfo(db), "SELECT count(*) FROM prt1") == [(600,)]


@skip_if_dumps_rejected()
def test_restore_partitioned_table_after_drop_cascade(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    before = contents(pg.conninfo(db))
    m = dump(repo, pg.conninfo(db))
    psql_exec(pg.conninfo(db), "DROP TABLE prt1 CASCADE")
    rc, out = pgsafe(repo, "restore", str(m["id"]), "-d", pg.conninfo(db), "-t", "prt1")
    assert rc == 0, out
    assert contents(pg.conninfo(db)) == before
    assert query(pg.conninfo(db), "SELECT count(*) FROM prt1") == [(600,)]  # attached again
    # the partitioned index came back on every partition
    assert query(
        pg.conninfo(db),
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE c.relkind IN ('i', 'I')",
    ) == [(7,)]


@skip_if_dumps_rejected()
def test_restore_inheritance_parent_clean_leaves_its_children(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    before = contents(pg.conninfo(db))
    m = dump(repo, pg.conninfo(db))
    psql_exec(
        pg.conninfo(db), "DELETE FROM ONLY a_star; INSERT INTO c_star VALUES ('c', 99, 'new')"
    )
    changed = contents(pg.conninfo(db))
    rc, out = pgsafe(
        repo, "restore", str(m["id"]), "-d", pg.conninfo(db), "-t", "a_star", "--clean"
    )
    assert rc == 0, out
    after = contents(pg.conninfo(db))
    assert after["public.a_star"] == before["public.a_star"]
    for child in ("b_star", "c_star", "d_star"):
        assert after[f"public.{child}"] == changed[f"public.{child}"], child
    assert "public.c_star" not in out.split("replace the rows", 1)[-1].split("\n", 1)[0]


def test_fingerprints_are_per_relation_and_verify_passes_with_reordered_columns(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    m = dump(repo, pg.conninfo(db))
    fps = m["fingerprint"][""]  # type: ignore[index]
    assert fps["public.a_star"]["rows"] == 2  # ONLY: without its children's rows
    assert fps["public.prt1_p1_a"]["rows"] > 0 and "public.prt1" not in fps
    assert fps["public.mv"]["populated"] and fps["public.mv"]["fresh"]
    assert fps["public.mv_empty"] == {**fps["public.mv_empty"], "populated": False}
    rc, out = pgsafe(repo, "verify", str(m["id"]))
    assert rc == 0, out
    assert "PASSED" in out and "public.kid" in out
    assert "✓" not in "\n".join(ln for ln in out.splitlines() if "fail" in ln.lower())


@skip_if_dumps_rejected()
@pytest.mark.parametrize("table", ["prt1", "c_star", "prt1_p1_a"])
def test_dump_of_one_table_restores_into_an_empty_database(
    pg: LocalCluster, db: str, repo: Path, table: str
) -> None:
    before = contents(pg.conninfo(db))
    m = dump(repo, pg.conninfo(db), "-t", table)
    fps = m["fingerprint"][""]  # type: ignore[index]
    if table == "prt1":
        assert set(fps) == {
            f"public.{p}"
            for p in ("prt1_p1_a", "prt1_p1_def", "prt1_p2_h0", "prt1_p2_h1", "prt1_def")
        }
    else:
        assert set(fps) == {f"public.{table}"}
    rc, out = pgsafe(repo, "verify", str(m["id"]))
    assert rc == 0, out
    target = f"one_{table}"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    rc, out = pgsafe(repo, "restore", str(m["id"]), "--create", "-d", pg.conninfo(target))
    assert rc == 0, out
    got = contents(pg.conninfo(target))
    for rel in fps:
        assert got[rel] == before[rel], rel
    for rel in set(got) - set(fps):
        assert got[rel][0] == 0, f"{rel}: an ancestor's definition came without its rows"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")


@skip_if_dumps_rejected()
def test_plain_backup_with_a_domain_restores_into_an_empty_database_and_with_clean(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    before = contents(pg.conninfo(db))
    m = dump(repo, pg.conninfo(db), "--format", "plain")
    target = "plain_empty"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    rc, out = pgsafe(repo, "restore", str(m["id"]), "--create", "-d", pg.conninfo(target))
    assert rc == 0, out
    assert contents(pg.conninfo(target)) == before
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    rc, out = pgsafe(repo, "verify", str(m["id"]))
    assert rc == 0, out
    # --clean over the live database still works: drops, then replays, in one transaction
    psql_exec(pg.conninfo(db), "DELETE FROM other WHERE id < 10; ALTER DOMAIN posint"
              " DROP CONSTRAINT posint_check; CREATE TABLE extra(i int)")  # fmt: skip
    rc, out = pgsafe(repo, "restore", str(m["id"]), "-d", pg.conninfo(db), "--clean")
    assert rc == 0, out
    assert contents(pg.conninfo(db)) == {**before, "public.extra": (0, before_empty())}
    assert query(pg.conninfo(db), "SELECT count(*) FROM pg_constraint"
                 " WHERE conname = 'posint_check'") == [(1,)]  # fmt: skip


def before_empty() -> str:
    return "d41d8cd98f00b204e9800998ecf8427e"  # md5 of no rows


def test_verify_names_the_statement_of_a_backup_that_cannot_be_restored(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    # pg_dump -t does not dump the types a table uses: this backup needs a type it lacks
    m = dump(repo, pg.conninfo(db), "-t", "feelings")
    rc, out = pgsafe(repo, "verify", str(m["id"]))
    assert rc == 3, out
    failing = [ln for ln in out.splitlines() if "✗" in ln]
    assert any("CREATE TABLE public.feelings" in ln and "hint:" in ln for ln in failing), out
    for ln in out.splitlines():
        if any(w in ln for w in ("ERROR", "missing", "differs", "failed")):
            assert "✓" not in ln, ln


@skip_if_dumps_rejected()
@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_database_properties_travel_with_the_backup(
    pg: LocalCluster, db: str, repo: Path, fmt: str
) -> None:
    psql_exec(pg.conninfo(), "DO $$BEGIN CREATE ROLE alice; EXCEPTION WHEN duplicate_object"
              " THEN NULL; END$$")  # fmt: skip
    for stmt in (
        f"ALTER DATABASE {db} OWNER TO alice",
        f"ALTER DATABASE {db} SET bytea_output = 'escape'",
        f"ALTER DATABASE {db} SET search_path = 'a, b', public",
        f"ALTER ROLE alice IN DATABASE {db} SET work_mem = '8MB'",
        f"COMMENT ON DATABASE {db} IS 'it''s {db}'",
        f"REVOKE CONNECT ON DATABASE {db} FROM PUBLIC",
    ):
        psql_exec(pg.conninfo(), stmt)

    def props(name: str) -> list[tuple[object, ...]]:
        return query(
            pg.conninfo(),
            "SELECT pg_get_userbyid(d.datdba), shobj_description(d.oid, 'pg_database'),"
            " (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(d.datacl) a),"
            " (SELECT array_agg(coalesce(r.rolname, '-') || ':' || array_to_string(s.setconfig,"
            " '|') ORDER BY 1) FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid ="
            f" s.setrole WHERE s.setdatabase = d.oid) FROM pg_database d WHERE datname = '{name}'",
        )

    m = dump(repo, pg.conninfo(db), "--format", fmt)
    target = f"props_{fmt}"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    rc, out = pgsafe(repo, "restore", str(m["id"]), "--create", "-d", pg.conninfo(target))
    assert rc == 0, out
    original, restored = props(db), props(target)
    assert restored == original, (original, restored)
    assert restored[0][0] == "alice" and restored[0][1] == f"it's {db}"
    assert restored[0][2] == ["=T/alice", "alice=CTc/alice"]  # PUBLIC lost CONNECT
    assert len(restored[0][3]) == 2  # type: ignore[arg-type]  # the database's, alice's
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    # into the existing database: says what it did not apply
    rc, out = pgsafe(repo, "restore", str(m["id"]), "-d", pg.conninfo(db), "--clean")
    assert rc == 0, out
    assert "database properties not applied" in out and "settings" in out
    rc, out = pgsafe(repo, "verify", str(m["id"]))
    assert rc == 0 and "database properties" in out, out


@skip_if_dumps_rejected()
def test_clean_restore_keeps_triggers_from_firing_into_other_tables(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    m = dump(repo, pg.conninfo(db))
    psql_exec(
        pg.conninfo(db),
        "CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO other VALUES (1000 + NEW.a, 'fired'); RETURN NEW; END$$;"
        "CREATE TRIGGER log_it AFTER INSERT ON a_star FOR EACH ROW EXECUTE FUNCTION log_it();"
        "ALTER TABLE a_star ENABLE ALWAYS TRIGGER log_it;"  # fires even as a replica
        "DELETE FROM ONLY a_star WHERE a = 1;",
    )
    before = contents(pg.conninfo(db))
    args = ("restore", str(m["id"]), "-d", pg.conninfo(db), "-t", "a_star", "--clean")
    rc, out = pgsafe(repo, *args)
    assert rc == 0, out
    after = contents(pg.conninfo(db))
    assert after["public.other"] == before["public.other"]  # the trigger did not fire
    assert after["public.a_star"][0] == 2  # the row deleted after the dump is back
    tg = "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'log_it'"
    assert query(pg.conninfo(db), tg) == [("A",)]  # back in its own mode
    # a rule that would write elsewhere cannot be turned off: refused, nothing changed
    psql_exec(pg.conninfo(db), "CREATE RULE copy_it AS ON INSERT TO a_star DO ALSO"
              " INSERT INTO other VALUES (2000 + NEW.a, 'rule');"
              " ALTER TABLE a_star ENABLE ALWAYS RULE copy_it")  # fmt: skip
    before = contents(pg.conninfo(db))
    rc, out = pgsafe(repo, *args)
    assert rc == 2, out
    assert "rule copy_it on public.a_star" in out and "Traceback" not in out
    assert contents(pg.conninfo(db)) == before


@skip_if_dumps_rejected()
def test_excluding_an_inheritance_parent_keeps_its_definition_for_its_children(
    pg: LocalCluster, db: str, repo: Path
) -> None:
    before = contents(pg.conninfo(db))
    m = dump(repo, pg.conninfo(db), "-T", "a_star", "-T", "prt1")
    fps = m["fingerprint"][""]  # type: ignore[index]
    assert "public.a_star" not in fps and "public.b_star" in fps
    assert not any(k.startswith("public.prt1") for k in fps)  # its partitions went too
    target = "without_a_star"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    rc, out = pgsafe(repo, "restore", str(m["id"]), "--create", "-d", pg.conninfo(target))
    assert rc == 0, out
    got = contents(pg.conninfo(target))
    assert got["public.a_star"][0] == 0 and got["public.d_star"] == before["public.d_star"]
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")


@skip_if_dumps_rejected()
@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_clean_restore_of_a_partitioned_index_made_after_its_partitions_index(
    pg: LocalCluster, repo: Path, fmt: str
) -> None:
    """pg_dump's --clean script drops a partition's index that is attached to a
    partitioned index before the partitioned one, which PostgreSQL refuses ("cannot drop
    index ... because index ... requires it"): with every major when the partition's
    index was made first, as here (and on 13 whatever the order)."""
    name = f"pidx_{fmt}"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {name}")
    psql_exec(
        pg.conninfo(name),
        "CREATE TABLE tp (c int, a int, b int) PARTITION BY RANGE (b);"
        "CREATE TABLE tp_1 (c int, a int, b int);"
        "ALTER TABLE tp ATTACH PARTITION tp_1 FOR VALUES FROM (0) TO (10);"
        "CREATE INDEX t_a_idx ON tp_1 (a);"
        "CREATE INDEX tp_a_idx ON tp (a);"  # attaches t_a_idx
        "CREATE TABLE other (x int PRIMARY KEY);"
        "INSERT INTO tp SELECT g, g * 2, g % 10 FROM generate_series(1, 500) g;"
        "INSERT INTO other SELECT generate_series(1, 50);",
    )
    before = contents(pg.conninfo(name))
    m = dump(repo, pg.conninfo(name), "--format", fmt)
    psql_exec(pg.conninfo(name), "DELETE FROM tp WHERE a < 100; DELETE FROM other")
    rc, out = pgsafe(repo, "restore", str(m["id"]), "-d", pg.conninfo(name), "--clean")
    assert rc == 0, out
    assert contents(pg.conninfo(name)) == before
    indexes = query(
        pg.conninfo(name),
        "SELECT c.relname, coalesce(p.relname, '') FROM pg_class c"
        " LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid ="
        " i.inhparent WHERE c.relname IN ('t_a_idx', 'tp_a_idx') ORDER BY 1",
    )
    assert indexes == [("t_a_idx", "tp_a_idx"), ("tp_a_idx", "")]
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
