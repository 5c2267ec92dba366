"""The catalog map recorded with each base backup: which relfilenode was which table.

The WAL names relations by ``TABLESPACE/DATABASE/RELFILENODE`` only.  A table that
still exists is named by the live server; a dropped (or truncated, or rewritten) one
no longer is, so ``pgsafe backup`` stores, beside each base backup, every database's
oid and name and every relation's relfilenode, oid, schema, name and kind
(``pg_class.relkind``) as they were when the backup was taken (object role
``catalog_map``, JSON).

It is read back from the repository, untrusted: :func:`parse` checks every field and
raises ValueError on anything unexpected (the caller names the damage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

FORMAT = 1
ROLE = "catalog_map"  # the object role of a backup's own map
REBUILT_ROLE = "catalog_map_rebuilt"  # of a map a throwaway recovery rebuilt (pgsafe.undo)
MAX_BYTES = 256 << 20  # a map is ~100 bytes per relation
MAX_NAME = 1024  # bytes; PostgreSQL's NAMEDATALEN is 64
RELKINDS = frozenset("rpmtiSIvfc")
_OID_MAX = 0xFFFFFFFF


@dataclass(frozen=True)
class MappedRelation:
    """One relation of one database at the time of the backup."""

    oid: int
    relfilenode: int  # 0 for relations without storage (partitioned tables, views)
    schema: str
    name: str
    kind: str  # pg_class.relkind: r table, p partitioned, m matview, t toast, i index...

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class DatabaseMap:
    oid: int
    name: str
    relations: tuple[MappedRelation, ...] = ()
    _by_filenode: dict[int, MappedRelation] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for r in self.relations:
            if r.relfilenode:
                self._by_filenode.setdefault(r.relfilenode, r)

    def by_filenode(self, relfilenode: int) -> MappedRelation | None:
        return self._by_filenode.get(relfilenode)


@dataclass(frozen=True)
class CatalogMap:
    """Every database's relations when a backup was taken."""

    databases: tuple[DatabaseMap, ...] = ()

    def database(self, oid: int) -> DatabaseMap | None:
        for d in self.databases:
            if d.oid == oid:
                return d
        return None

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "databases": [
                {
                    "oid": d.oid,
                    "name": d.name,
                    "relations": [
                        [r.oid, r.relfilenode, r.schema, r.name, r.kind] for r in d.relations
                    ],
                }
                for d in self.databases
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode()


def _oid(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _OID_MAX:
        raise ValueError(f"{what} is not an oid")
    return value


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > MAX_NAME:
        raise ValueError(f"{what} is not a name")
    if "\x00" in value:
        raise ValueError(f"{what} holds a NUL character")
    return value


def _relation(row: object, at: str) -> MappedRelation:
    if not isinstance(row, list) or len(row) != 5:
        raise ValueError(f"{at} is not [oid, relfilenode, schema, name, kind]")
    kind = row[4]
    if not isinstance(kind, str) or kind not in RELKINDS or len(kind) != 1:
        raise ValueError(f"{at}: unknown relkind")
    return MappedRelation(
        _oid(row[0], f"{at} oid"), _oid(row[1], f"{at} relfilenode"),
        _name(row[2], f"{at} schema"), _name(row[3], f"{at} name"), kind,
    )  # fmt: skip


def parse(data: bytes) -> CatalogMap:
    """The map of a stored object (untrusted): ValueError names what is wrong."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a catalog map of a known format")
    dbs = doc.get("databases")
    if not isinstance(dbs, list):
        raise ValueError("no databases")
    out = []
    for i, d in enumerate(dbs):
        if not isinstance(d, dict) or not isinstance(d.get("relations"), list):
            raise ValueError(f"databases[{i}] is not an object with relations")
        rels = tuple(_relation(r, f"databases[{i}].relations[{j}]")
                     for j, r in enumerate(d["relations"]))  # fmt: skip
        out.append(DatabaseMap(_oid(d.get("oid"), f"databases[{i}].oid"),
                               _name(d.get("name"), f"databases[{i}].name"), rels))  # fmt: skip
    return CatalogMap(tuple(out))
