"""Which tables a database has, and resolving user table names to exact ones.

``-t NAME`` accepts ``table`` or ``schema.table`` as the name is stored (quotes,
spaces and non-ASCII characters are fine), falls back to SQL's case folding, and
understands ``*`` / ``?`` wildcards.  An unknown name is an error before anything runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from pgsafe.errors import BadInput, NotFound
from pgsafe.pg.connect import Connection

_TABLES_SQL = """
SELECT n.nspname, c.relname, c.relkind::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1, 2
"""


@dataclass(frozen=True, order=True)
class Table:
    schema: str
    name: str
    partitioned: bool = False

    @property
    def qualified(self) -> str:
        """``schema.name`` as stored (not quoted): the key of fingerprints."""
        return f"{self.schema}.{self.name}"

    def pattern(self) -> str:
        """An exact pg_dump ``-t`` pattern: both parts double-quoted, quotes doubled."""
        return f"{_quote(self.schema)}.{_quote(self.name)}"


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def list_tables(conn: Connection) -> list[Table]:
    rows = conn.execute(_TABLES_SQL).fetchall()
    return [Table(str(s), str(n), str(k) == "p") for s, n, k in rows]


def resolve(names: tuple[str, ...], tables: list[Table], what: str = "table") -> list[Table]:
    """Exact tables for user-given names; :class:`NotFound` for a name matching none."""
    out: list[Table] = []
    for name in names:
        found = match(name, tables)
        if not found:
            raise NotFound(
                f"no {what} {name!r} in the database",
                hint="names are matched as stored (case-sensitive) or with SQL case folding; "
                "write schema.table when the schema is not public",
            )
        for t in found:
            if t not in out:
                out.append(t)
    return sorted(out)


def match(name: str, tables: list[Table]) -> list[Table]:
    if not name.strip():
        raise BadInput("empty table name", hint="give a table name after -t / -T")
    if any(ch in name for ch in "*?"):
        return [
            t
            for t in tables
            if fnmatch.fnmatchcase(t.name, name) or fnmatch.fnmatchcase(t.qualified, name)
        ]
    for candidate in (name, name.lower()):
        exact = [t for t in tables if t.name == candidate]
        if "." in candidate:
            schema, _, rel = candidate.partition(".")
            exact += [t for t in tables if t.schema == schema and t.name == rel]
        if len(exact) > 1:
            unique = sorted(set(exact))
            if len(unique) > 1:
                raise BadInput(
                    f"table name {name!r} is ambiguous: " + ", ".join(t.qualified for t in unique),
                    hint="write it as schema.table",
                )
            exact = unique
        if exact:
            return exact
    return []


_DEFAULT_SEQUENCES_SQL = """
SELECT DISTINCT sn.nspname, s.relname
  FROM pg_catalog.pg_attrdef ad
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass
       AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
  JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
  JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
 WHERE ad.adrelid = ANY (ARRAY(SELECT pg_catalog.to_regclass(x) FROM unnest(%s::text[]) x))
 ORDER BY 1, 2
"""


def default_sequences(conn: Connection, tables: list[Table]) -> list[Table]:
    """Sequences the tables' column defaults use (serial columns and plain nextval)."""
    rows = conn.execute(_DEFAULT_SEQUENCES_SQL, ([t.pattern() for t in tables],)).fetchall()
    return [Table(str(s), str(n)) for s, n in rows]
