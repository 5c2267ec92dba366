"""A whole table from the throwaway cluster into the live database, in its transaction.

What ``restore -t`` brings back, a table comes back with: its definition, indexes,
constraints, triggers, partitions and owned sequences (with their values) — read with
PostgreSQL's own ``pg_dump -t`` (pre-data and post-data sections) from the throwaway
cluster, which pg_dump already selects for one table, and executed in the live
transaction around a ``COPY`` of the rows.  Under a new name (``--as``) the table, its
partitions, indexes and owned sequences are renamed in the throwaway cluster first
(it is promoted and thrown away), so that nothing collides with the live table.
"""

from __future__ import annotations

import subprocess

from psycopg import sql

from pgsafe.cluster.local import LocalCluster
from pgsafe.errors import BadInput, ToolFailed
from pgsafe.logical.tables import Table
from pgsafe.pg.connect import Connection
from pgsafe.pg.runner import first_error_line

_TREE_SQL = """
SELECT n.nspname, c.relname, c.relkind::text
  FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass(%s)) p
  JOIN pg_catalog.pg_class c ON c.oid = p.relid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 ORDER BY p.level, c.relname
"""

_OWNED_SQL = """
SELECT DISTINCT n.nspname, c.relname, c.relkind::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
  LEFT JOIN pg_catalog.pg_depend d ON d.objid = c.oid
       AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
 WHERE (c.relkind IN ('i', 'I') AND i.indrelid = pg_catalog.to_regclass(%s))
    OR (c.relkind = 'S' AND d.refobjid = pg_catalog.to_regclass(%s))
"""

_COLUMNS_SQL = """
SELECT a.attname FROM pg_catalog.pg_attribute a
 WHERE a.attrelid = pg_catalog.to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
   AND a.attgenerated = '' ORDER BY a.attnum
"""


def _ident(t: Table) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(t.schema), sql.Identifier(t.name))


def tree(conn: Connection, t: Table) -> list[Table]:
    """The table and, when partitioned, every partition (parents first)."""
    rels = [
        Table(str(s), str(n), str(k) == "p") for s, n, k in conn.execute(_TREE_SQL, (t.pattern(),))
    ]
    return rels or [t]  # a table outside any partition tree has no rows there


def _renamed(name: str, old: str, new: str) -> str:
    return name.replace(old, new, 1) if old in name else f"{new}_{name}"


def rename(conn: Connection, t: Table, new: str) -> Table:
    """Rename ``t`` (in the throwaway cluster) with its partitions, indexes and owned
    sequences: ``orders_pkey`` becomes ``NEW_pkey``."""
    for rel in reversed(tree(conn, t)):
        for s, n, kind in list(conn.execute(_OWNED_SQL, (rel.pattern(), rel.pattern()))):
            verb = "SEQUENCE" if kind == "S" else "INDEX"
            conn.execute(
                sql.SQL("ALTER {} {}.{} RENAME TO {}").format(
                    sql.SQL(verb),
                    sql.Identifier(str(s)),
                    sql.Identifier(str(n)),
                    sql.Identifier(_renamed(str(n), t.name, new)),
                )
            )
        target = new if rel == t or rel.name == t.name else _renamed(rel.name, t.name, new)
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(_ident(rel), sql.Identifier(target))
        )
    return Table(t.schema, new, t.partitioned)


def _dump(cluster: LocalCluster, db: str, tables: list[Table], section: str) -> str:
    argv = [
        cluster.program("pg_dump"),
        "-h",
        str(cluster.run_dir),
        "-p",
        str(cluster.port),
        "-U",
        "postgres",
        "-d",
        db,
        f"--section={section}",
        "--no-comments",
    ]
    if not tables:  # pg_dump without -t would dump the whole database
        raise ToolFailed("no table to dump from the throwaway cluster")
    for t in tables:
        argv += ["-t", t.pattern()]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise ToolFailed(
            f"pg_dump of the throwaway cluster failed: {first_error_line(proc.stderr)}"
        )
    # psql meta-commands (\restrict of newer minor releases) are not SQL
    return "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("\\"))


def _copy(before: Connection, live: Connection, t: Table) -> int:
    cols = sql.SQL(", ").join(
        sql.Identifier(str(r[0])) for r in before.execute(_COLUMNS_SQL, (t.pattern(),))
    )
    out = sql.SQL("COPY (SELECT {} FROM ONLY {}) TO STDOUT").format(cols, _ident(t))
    n = 0
    with (
        before.cursor().copy(out) as src,
        live.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(_ident(t), cols)) as dst,
    ):
        for block in src:
            dst.write(block)
            n += bytes(block).count(b"\n")
    return n


def _sequences(before: Connection, live: Connection, t: Table) -> None:
    for s, n, kind in list(before.execute(_OWNED_SQL, (t.pattern(), t.pattern()))):
        if kind != "S":
            continue
        seq = sql.SQL("{}.{}").format(sql.Identifier(str(s)), sql.Identifier(str(n)))
        row = before.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(seq)).fetchone()
        assert row is not None
        live.execute(
            "SELECT pg_catalog.setval(%s::regclass, %s, %s)",
            (Table(str(s), str(n)).pattern(), row[0], row[1]),
        )


def exists(live: Connection, t: Table) -> bool:
    row = live.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (t.pattern(),)).fetchone()
    return bool(row and row[0])


def create(
    cluster: LocalCluster,
    db: str,
    before: Connection,
    live: Connection,
    t: Table,
) -> int:
    """Create ``t`` (as the throwaway has it) in the live transaction; rows copied."""
    if exists(live, t):
        raise BadInput(
            f"a table {t.qualified} exists in the live database",
            hint="bring it back under another name with --as NEW_NAME",
        )
    rels = tree(before, t)
    live.execute(_dump(cluster, db, rels, "pre-data"))
    rows = sum(_copy(before, live, r) for r in rels if not r.partitioned)
    live.execute(_dump(cluster, db, rels, "post-data"))
    for r in rels:
        _sequences(before, live, r)
    live.execute("RESET search_path")
    return rows
