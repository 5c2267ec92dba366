"""Partitioning and inheritance: which tables a user's table selection really means.

PostgreSQL users name a partitioned table and mean its rows, which live in its
partitions (and sub-partitions); they name an inheritance parent and mean that table
(``SELECT ... FROM ONLY``), its children being tables of their own.  So:

- a partitioned table selects itself and every partition below it, recursively
  (what ``pg_dump --table-and-children`` does from PostgreSQL 16; pgsafe expands the
  selection itself, which works on every major);
- an inheritance parent selects itself alone;
- a partition or an inheritance child cannot be created without its parents: a dump
  of it carries its ancestors' *definitions* (no data), so that it restores into an
  empty database.

The tree is read from the catalogs at dump time and recorded in the backup's manifest
(``options.relations``), so a restore plans with the tree the backup was taken from.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgsafe.logical.tables import Table
from pgsafe.models.backup import JsonObject
from pgsafe.pg.connect import Connection

_RELATIONS_SQL = """
SELECT n.nspname, c.relname, c.relkind::text,
       coalesce((SELECT array_agg(ARRAY[pn.nspname::text, p.relname::text] ORDER BY i.inhseqno)
                   FROM pg_catalog.pg_inherits i
                   JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                   JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
                  WHERE i.inhrelid = c.oid), '{}'),
       c.relispartition
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Rel:
    """One relation: its kind (``r`` table, ``p`` partitioned, ``m`` materialized view,
    ``f`` foreign table) and its parents (a partition has one, ``partition=True``)."""

    schema: str
    name: str
    kind: str
    parents: tuple[tuple[str, str], ...] = ()
    partition: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def to_json(self) -> JsonObject:
        return {
            "schema": self.schema,
            "name": self.name,
            "kind": self.kind,
            "parents": [list(p) for p in self.parents],
            "partition": self.partition,
        }

    @classmethod
    def from_json(cls, d: JsonObject) -> Rel:
        """A relation the catalog recorded (its types checked on decode, by
        :func:`pgsafe.repo.catalog_schema.check_options`)."""
        parents = d.get("parents", [])
        return cls(
            str(d["schema"]),
            str(d["name"]),
            str(d.get("kind", "r")),
            tuple((str(p[0]), str(p[1])) for p in parents) if isinstance(parents, list) else (),
            bool(d.get("partition", False)),
        )


class Tree:
    """The relations of a database and how they inherit from each other."""

    def __init__(self, rels: list[Rel]) -> None:
        self.rels = {r.key: r for r in rels}
        self._children: dict[tuple[str, str], list[Rel]] = {}
        for r in rels:
            for p in r.parents:
                self._children.setdefault(p, []).append(r)

    @classmethod
    def read(cls, conn: Connection) -> Tree:
        rows = conn.execute(_RELATIONS_SQL).fetchall()
        return cls(
            [
                Rel(str(s), str(n), str(k), tuple((str(a), str(b)) for a, b in parents), bool(p))
                for s, n, k, parents, p in rows
            ]
        )

    @classmethod
    def from_json(cls, docs: list[JsonObject]) -> Tree:
        return cls([Rel.from_json(d) for d in docs])

    def to_json(self, keep: set[tuple[str, str]] | None = None) -> list[JsonObject]:
        return [r.to_json() for k, r in sorted(self.rels.items()) if keep is None or k in keep]

    def get(self, t: Table) -> Rel | None:
        return self.rels.get((t.schema, t.name))

    def kind(self, t: Table) -> str:
        r = self.get(t)
        return r.kind if r else ("p" if t.partitioned else "r")

    def partitions(self, t: Table) -> list[Table]:
        """Every partition below ``t``, recursively (none unless ``t`` is partitioned)."""
        out: list[Table] = []
        todo = [(t.schema, t.name)]
        while todo:
            key = todo.pop()
            for c in self._children.get(key, []):
                if c.partition:
                    out.append(Table(c.schema, c.name, c.kind == "p"))
                    todo.append(c.key)
        return sorted(out)

    def inheritors(self, t: Table) -> list[Table]:
        """Tables that inherit from ``t`` (not partitions), recursively."""
        out: set[Table] = set()
        todo = [(t.schema, t.name)]
        while todo:
            key = todo.pop()
            for c in self._children.get(key, []):
                if not c.partition and Table(c.schema, c.name) not in out:
                    out.add(Table(c.schema, c.name, c.kind == "p"))
                    todo.append(c.key)
        return sorted(out)

    def ancestors(self, t: Table) -> list[Table]:
        """Every table ``t`` inherits from or is a partition of, recursively."""
        out: list[Table] = []
        todo = [(t.schema, t.name)]
        seen: set[tuple[str, str]] = set()
        while todo:
            r = self.rels.get(todo.pop())
            for p in r.parents if r else ():
                if p not in seen:
                    seen.add(p)
                    pr = self.rels.get(p)
                    out.append(Table(p[0], p[1], bool(pr and pr.kind == "p")))
                    todo.append(p)
        return sorted(out)

    def expand(self, chosen: list[Table]) -> list[Table]:
        """``chosen`` plus every partition of its partitioned tables."""
        out = {(t.schema, t.name): t for t in chosen}
        for t in chosen:
            for p in self.partitions(t):
                out.setdefault((p.schema, p.name), p)
        return sorted(out.values())

    def context(self, chosen: list[Table]) -> list[Table]:
        """Ancestors of ``chosen`` that are not chosen: their definitions are needed to
        create the chosen tables, their data is not part of the selection."""
        keys = {(t.schema, t.name) for t in chosen}
        out: dict[tuple[str, str], Table] = {}
        for t in chosen:
            for a in self.ancestors(t):
                if (a.schema, a.name) not in keys:
                    out[(a.schema, a.name)] = a
        return sorted(out.values())
