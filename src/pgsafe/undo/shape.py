"""The shape of one table on both sides: its columns, its primary key, checked alike.

Rows travel from the throwaway cluster to the live database by ``COPY`` (text format:
it does not depend on type OIDs); the columns are those the throwaway's table has
(generated ones left out: PostgreSQL computes them), and the live table must have each
with the same type, else the undo is refused before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from pgsafe.errors import BadInput
from pgsafe.logical.tables import Table
from pgsafe.pg.connect import Connection

_COLUMNS_SQL = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
  FROM pg_catalog.pg_attribute a
 WHERE a.attrelid = pg_catalog.to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
   AND a.attgenerated = ''
 ORDER BY a.attnum
"""

_KEY_SQL = """
SELECT a.attname
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
 WHERE i.indrelid = pg_catalog.to_regclass(%s) AND i.indisprimary
 ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)
"""

# one text form of values on both connections (no-key rows are compared by their text)
SESSION = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';"
    " SET extra_float_digits = 3; SET bytea_output = 'hex'"
)


@dataclass(frozen=True)
class Shape:
    table: Table
    columns: list[str]
    key: list[str]

    @property
    def ident(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(
            sql.Identifier(self.table.schema), sql.Identifier(self.table.name)
        )

    def cols(self, alias: str | None = None) -> sql.Composed:
        if alias is None:
            return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        return sql.SQL(", ").join(sql.Identifier(alias, c) for c in self.columns)

    def row_text(self, alias: str) -> sql.Composed:
        return sql.SQL("ROW({})::text").format(self.cols(alias))

    def key_match(self, a: str, b: str) -> sql.Composed:
        return sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(a, k), sql.Identifier(b, k)) for k in self.key
        )

    def key_text(self, alias: str) -> sql.Composed:
        parts = sql.SQL(", ").join(sql.Identifier(alias, k) for k in self.key)
        return sql.SQL("ROW({})::text").format(parts)


def _columns(conn: Connection, t: Table) -> list[tuple[str, str]]:
    return [(str(n), str(ty)) for n, ty in conn.execute(_COLUMNS_SQL, (t.pattern(),))]


def shape(before: Connection, live: Connection, t: Table) -> Shape:
    """The table's shape; BadInput when the live table's columns changed since."""
    then = _columns(before, t)
    now = dict(_columns(live, t))
    changed = [f"{n} {ty}" for n, ty in then if now.get(n) != ty]
    if changed:
        raise BadInput(
            f"table {t.qualified} changed shape since: the live table has no column "
            + ", ".join(changed),
            hint="bring the table back under another name instead: "
            "pgsafe restore-table -t TABLE --time T --as NEW_NAME",
        )
    key = [str(r[0]) for r in live.execute(_KEY_SQL, (t.pattern(),))]
    return Shape(t, [n for n, _ in then], key)
