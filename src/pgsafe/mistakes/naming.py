"""Name relfilenodes and databases: the live server first, then the catalog maps.

A relfilenode that the live server still knows is named there.  One it no longer
knows (dropped, truncated, rewritten) is looked up in the catalog maps recorded with
the base backups, the newest backup taken before the transaction first.  Backups
older than the catalog map (or whose map is damaged) name nothing, and neither does any
map a table created after the newest base backup and dropped (or truncated) before the
next: the relfilenode is shown, and a note says how to get the name (``mistakes
--name-dropped``, :mod:`pgsafe.undo.catalog`, or ``undo XID --dry-run``: a throwaway
copy recovered to just before the transaction, whose catalogs name it).  Damaged maps
are skipped and reported in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pgsafe.errors import PgsafeError
from pgsafe.logical.materialize import chunks
from pgsafe.mistakes.live import LiveServer
from pgsafe.mistakes.model import Mistake
from pgsafe.models.catalogmap import MAX_BYTES, REBUILT_ROLE, ROLE, CatalogMap, parse
from pgsafe.models.kinds import BackupKind
from pgsafe.repo.catalog import Manifest, StoredObject
from pgsafe.repo.repository import Repository

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "pg_toast", "information_schema"})
FIRST_NORMAL_OID = 16384  # relfilenodes below belong to the system catalogs (initdb)
UNNAMED_NOTES = 5  # transactions with unnamed relations told one by one; the rest counted


@dataclass(frozen=True)
class Named:
    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind
    live: bool  # the relation still exists on the live server (by this relfilenode)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def system(self) -> bool:
        return self.schema in SYSTEM_SCHEMAS or self.schema.startswith("pg_temp")


@dataclass
class Maps:
    """The catalog maps of a repository's physical backups, oldest first."""

    maps: list[tuple[datetime, CatalogMap]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read(repo: Repository, m: Manifest, obj: StoredObject | None) -> CatalogMap | None:
    if obj is None:
        return None
    if obj.raw_size > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    data = bytearray()
    for piece in chunks(repo, m, obj):
        data += piece
        if len(data) > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES} bytes")
    return parse(bytes(data))


def load_maps(repo: Repository) -> Maps:
    """Every physical backup's map that can be read; damage is a note, not an error."""
    out = Maps()
    for m in sorted(repo.list_backups(), key=lambda m: m.started_at):
        if m.kind != BackupKind.PHYSICAL or not m.ok:
            continue
        try:
            cmap = _read(repo, m, m.object(ROLE))
        except (ValueError, PgsafeError) as exc:
            out.notes.append(f"the catalog map of backup {m.id} is unusable ({exc}):"
                             " its relations are shown by relfilenode")  # fmt: skip
            continue
        if cmap is not None:
            out.maps.append((datetime.fromisoformat(m.started_at), cmap))
        out.maps += _rebuilt(repo, m, out.notes)
    out.maps.sort(key=lambda tm: tm[0])
    return out


def _rebuilt(repo: Repository, m: Manifest, notes: list[str]) -> list[tuple[datetime, CatalogMap]]:
    """The maps of backup ``m`` that throwaway recoveries rebuilt, with their time (read
    from the repository: checked like the backup's own; damage is a note)."""
    out = []
    for obj in m.objects:
        if obj.role != REBUILT_ROLE:
            continue
        try:
            when = obj.extra.get("taken_at")
            if not isinstance(when, str):
                raise ValueError("no time recorded")
            taken = datetime.fromisoformat(when)
            if taken.tzinfo is None:
                raise ValueError(f"time {when!r} has no zone")
            cmap = _read(repo, m, obj)
        except (ValueError, PgsafeError) as exc:
            notes.append(f"the catalog map {obj.name} of backup {m.id} is unusable ({exc})")
            continue
        if cmap is not None:
            out.append((taken, cmap))
    return out


class Namer:
    """Names for ``(database oid, relfilenode)`` and database oids, cached."""

    def __init__(self, live: LiveServer | None, maps: Maps) -> None:
        self.live = live
        self.maps = maps
        self._live: dict[tuple[int, int, int], Named | None] = {}
        self._mapped: dict[tuple[int, int], list[tuple[datetime, Named]]] = {}

    def _from_maps(self, db: int, relfilenode: int, at: datetime | None) -> Named | None:
        hits = self._mapped.get((db, relfilenode))
        if hits is None:
            hits = []
            for taken, cmap in self.maps.maps:
                d = cmap.database(db)
                r = d.by_filenode(relfilenode) if d else None
                if r is not None:
                    hits.append((taken, Named(r.oid, r.schema, r.name, r.kind, live=False)))
            self._mapped[(db, relfilenode)] = hits
        if not hits:
            return None
        before = [n for t, n in hits if at is None or t <= at]
        return before[-1] if before else hits[0][1]  # the newest map taken before it

    def _from_live(self, db: int, tablespace: int, relfilenode: int) -> Named | None:
        if self.live is None:
            return None
        key = (db, tablespace, relfilenode)
        if key not in self._live:
            r = self.live.by_filenode(db, tablespace, relfilenode)
            self._live[key] = Named(r.oid, r.schema, r.name, r.kind, live=True) if r else None
        return self._live[key]

    def relation(
        self, db: int, tablespace: int, relfilenode: int, at: datetime | None = None
    ) -> Named | None:
        """The relation behind a relfilenode when the transaction ran, or None."""
        return self._from_live(db, tablespace, relfilenode) or self._from_maps(db, relfilenode, at)

    def steady(self, db: int, tablespace: int, relfilenode: int) -> bool:
        """Whether :meth:`relation` names this relfilenode the same at any time: the live
        server names it, or the catalog maps name it alike (or none does)."""
        if self._from_live(db, tablespace, relfilenode) is not None:
            return True
        self._from_maps(db, relfilenode, None)
        return len({n for _, n in self._mapped[(db, relfilenode)]}) <= 1

    def live_by_oid(self, db: int, oid: int) -> Named | None:
        if self.live is None:
            return None
        r = self.live.by_oid(db, oid)
        return Named(r.oid, r.schema, r.name, r.kind, live=True) if r else None

    def database(self, oid: int) -> str | None:
        if self.live is not None:
            name = self.live.database_name(oid)
            if name is not None:
                return name
        for _, cmap in reversed(self.maps.maps):
            d = cmap.database(oid)
            if d is not None:
                return d.name
        return None

    def database_names(self) -> set[str]:
        out = set()
        if self.live is not None:
            out |= self.live.database_names()
        for _, cmap in self.maps.maps:
            out |= {d.name for d in cmap.databases}
        return out

    def database_oids(self, name: str) -> set[int]:
        """Every oid a database of this name had (live and in the maps)."""
        out = set()
        if self.live is not None:
            oid = self.live.database_oid(name)
            if oid is not None:
                out.add(oid)
        for _, cmap in self.maps.maps:
            out |= {d.oid for d in cmap.databases if d.name == name}
        return out


def unnamed_notes(mistakes: Sequence[Mistake]) -> list[str]:
    """A note for each transaction (the newest few) that touched relations no catalog
    names, with the command that names them: its undo, as a dry run."""
    unnamed = [m for m in mistakes if any(c.table is None and c.relfilenode for c in m.changes)]
    out = []
    for m in unnamed[-UNNAMED_NOTES:]:
        nodes = ", ".join(
            str(c.relfilenode) for c in m.changes if c.table is None and c.relfilenode
        )
        out.append(
            f"transaction {m.xid} touched relfilenode(s) {nodes}, which neither the live server"
            " nor a catalog map names (a table created after the newest base backup, or a"
            f" backup older than catalog maps): `{m.undo} --dry-run` recovers a throwaway"
            " copy to just before it and names the tables there, changing nothing (as"
            " `mistakes --name-dropped` does for each such transaction listed)"
        )
    if len(unnamed) > UNNAMED_NOTES:
        out.append(f"{len(unnamed) - UNNAMED_NOTES} older transaction(s) also touched"
                   " unnamed relations: narrow the window to see them")  # fmt: skip
    return out
