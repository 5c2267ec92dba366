"""``restore --clean`` of an archive into a database whose partitioned indexes have
partitions: put the drops in an order PostgreSQL accepts.

pg_restore ``--clean`` drops the archive's objects in the reverse of their restore order,
and pg_dump may list a partition's index (attached to a partitioned index) so that its
``DROP INDEX`` comes before the partitioned index's. PostgreSQL refuses that ("cannot drop
index t_a_idx because index tp_a_idx requires it"): pg_dump 13 does it for every
partitioned index, later majors when the partition's index was made first (reported on
pgsql-hackers in 2025, still so in 18). Dropping the partitioned index drops its
partitions' indexes with it, so the fix is the order: pg_restore restores (and therefore
drops, backwards) in the order of a ``-L`` list, and :func:`reorder` moves the index
entries so that, among the indexes of one partition tree in the target database, the
deepest come first in the list -- the top one is then dropped first, and the
``DROP INDEX IF EXISTS`` of the others find nothing. Creation is unaffected: pg_dump makes
partitioned indexes ``ON ONLY`` their table and attaches the partitions' indexes later,
in entries of their own.

Only the index entries of the list move; a restore whose target has no attached index
keeps pg_restore's own order (no list at all).
"""

from __future__ import annotations

from pgsafe.pg.connect import connect

# every index that is a partition of another index, with its depth below the top one
_DEPTHS_SQL = """
WITH RECURSIVE tree(oid, depth) AS (
    SELECT i.inhrelid, 1
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhparent
     WHERE c.relkind = 'I'
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits u WHERE u.inhrelid = c.oid)
    UNION ALL
    SELECT i.inhrelid, t.depth + 1
      FROM tree t JOIN pg_catalog.pg_inherits i ON i.inhparent = t.oid
)
SELECT n.nspname, c.relname, t.depth
  FROM tree t
  JOIN pg_catalog.pg_class c ON c.oid = t.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""
_TOPS_SQL = """
SELECT n.nspname, c.relname
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'I'
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits u WHERE u.inhrelid = c.oid)
"""

Depths = dict[tuple[str, str], int]


def index_depths(conninfo: str) -> Depths:
    """For the target database: each index in a partitioned index's tree, by (schema,
    name), with its depth (0 for the top, partitioned index). Empty where no index has
    partitions."""
    with connect(conninfo) as conn:
        below = conn.execute(_DEPTHS_SQL).fetchall()
        if not below:
            return {}
        tops = conn.execute(_TOPS_SQL).fetchall()
    depths: Depths = {(str(s), str(n)): 0 for s, n in tops}
    for s, n, d in below:
        depths[(str(s), str(n))] = int(d)
    return depths


def _index_of(line: str, depths: Depths) -> tuple[str, str] | None:
    """The (schema, name) of a ``pg_restore -l`` INDEX entry that ``depths`` knows."""
    # "123; 1259 16390 INDEX public t_a_idx owner"
    head, sep, rest = line.partition("; ")
    if not sep or not head.strip().isdigit():
        return None
    words = rest.split(" ", 3)
    if len(words) < 4 or words[2] != "INDEX":
        return None
    tail = words[3]
    for schema, name in depths:
        if tail.startswith(f"{schema} {name} "):
            return schema, name
    return None


def reorder(listing: str, depths: Depths) -> str:
    """``listing`` (``pg_restore -l``) with the INDEX entries of the target's partition
    trees in the place of the first of them, deepest first; everything else unmoved."""
    lines = listing.splitlines()
    found = [(i, _index_of(ln, depths)) for i, ln in enumerate(lines)]
    moved = [(i, key) for i, key in found if key is not None]
    if len(moved) < 2:
        return listing
    ordered = sorted(moved, key=lambda m: (-depths[m[1]], m[0]))
    first = moved[0][0]
    out = lines[:first] + [lines[i] for i, _ in ordered]
    out += [ln for i, ln in enumerate(lines) if i > first and found[i][1] is None]
    return "\n".join(out) + "\n"
