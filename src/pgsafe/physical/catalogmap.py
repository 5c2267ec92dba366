"""Record the catalog map (:mod:`pgsafe.models.catalogmap`) with a base backup.

``pgsafe backup`` calls :func:`take` while its session is open and :func:`store` once
the data is stored: one query per database that accepts connections, one small
object (``catalog_map.json`` + the codec's suffix, role ``catalog_map``) beside the
backup.  The map is an aid to ``pgsafe mistakes``, not part of the backup: a database
pgsafe cannot connect to is left out, and a failure leaves the backup without a map
(``mistakes`` then shows relfilenodes instead of names), never fails the backup.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from pgsafe.errors import PgsafeError
from pgsafe.models.backup import JsonObject
from pgsafe.models.catalogmap import REBUILT_ROLE, ROLE, CatalogMap, DatabaseMap, MappedRelation
from pgsafe.models.kinds import BackupKind
from pgsafe.pg.connect import Connection, connect
from pgsafe.repo.catalog import StoredObject
from pgsafe.repo.codec.hashing import Hasher
from pgsafe.repo.codec.pipeline import Pipeline
from pgsafe.repo.repository import Repository

log = logging.getLogger(__name__)

OBJECT_BASE = "catalog_map.json"
_RELATIONS = """
SELECT c.oid::bigint, coalesce(pg_relation_filenode(c.oid), 0)::bigint,
       n.nspname::text, c.relname::text, c.relkind::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm', 't', 'i') AND c.relpersistence = 'p'
 ORDER BY c.oid
"""


def _database(conninfo: str, oid: int, name: str) -> DatabaseMap | None:
    try:
        with connect(conninfo, dbname=name) as conn:
            rows = conn.execute(_RELATIONS).fetchall()
    except (PgsafeError, psycopg.Error) as exc:
        log.warning("catalog map: database %s left out: %s", name, exc)
        return None
    rels = tuple(MappedRelation(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows)
    return DatabaseMap(oid, name, rels)


def take(conninfo: str, conn: Connection) -> CatalogMap | None:
    """Every connectable database's relations now (None when it cannot be read)."""
    try:
        dbs = conn.execute(
            "SELECT oid::bigint, datname::text FROM pg_database WHERE datallowconn ORDER BY oid"
        ).fetchall()
    except psycopg.Error as exc:
        log.warning("catalog map not recorded: %s", exc)
        return None
    maps = [m for m in (_database(conninfo, int(o), n) for o, n in dbs) if m is not None]
    return CatalogMap(tuple(maps))


def store(repo: Repository, backup_id: str, encoder: Pipeline, cmap: CatalogMap) -> StoredObject:
    """Put the map beside the backup; its catalog entry (role ``catalog_map``)."""
    return _put(repo, backup_id, encoder, cmap, OBJECT_BASE + encoder.suffix, ROLE)


def _put(repo: Repository, backup_id: str, encoder: Pipeline, cmap: CatalogMap, name: str,
         role: str, extra: JsonObject | None = None) -> StoredObject:  # fmt: skip
    raw = cmap.to_json()
    stored = Hasher(encoder.encode([raw]))
    repo.storage.put(repo.object_key(backup_id, name), stored)
    return StoredObject(name, stored.size, stored.sha256, len(raw), encoder.spec.label, role,
                        extra or {})  # fmt: skip


REBUILT_PREFIX = "catalog_map-before-"


def store_rebuilt(repo: Repository, cmap: CatalogMap, xid: int, taken_at: datetime) -> bool:
    """Keep a map rebuilt by a throwaway recovery to just before transaction ``xid``
    (committed at ``taken_at``) beside the newest physical backup started before it:
    an object ``catalog_map-before-XID.json`` (role ``catalog_map_rebuilt``, its time in
    the entry's ``taken_at``), added to that backup's manifest under the catalog lock.
    ``pgsafe mistakes`` then names from it as from a backup's own map
    (:func:`pgsafe.mistakes.naming.load_maps`), without recovering again.  False when
    no backup can hold it or one holds it already."""
    with repo.lock("catalog"):
        older = [m for m in repo.list_backups() if m.kind == BackupKind.PHYSICAL and m.ok
                 and datetime.fromisoformat(m.started_at) <= taken_at]  # fmt: skip
        if not older:
            return False
        m = repo.load(max(older, key=lambda b: b.started_at).id)
        encoder = repo.encoder()
        name = f"{REBUILT_PREFIX}{xid}.json{encoder.suffix}"
        if any(o.name == name for o in m.objects):
            return False
        extra: JsonObject = {"before_xid": xid, "taken_at": taken_at.isoformat()}
        m.objects.append(_put(repo, m.id, encoder, cmap, name, REBUILT_ROLE, extra))
        repo.save(m)
    return True
