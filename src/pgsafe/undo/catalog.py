"""Name what no catalog map names: rebuild the map from a throwaway recovery.

A table created after the newest base backup and dropped (or truncated) before the next
is in no catalog map, and the live server no longer knows its relfilenode: ``pgsafe
mistakes`` lists it by relfilenode.  Asked to (``mistakes --name-dropped``), each such
transaction gets a throwaway cluster recovered to just before it (the one ``undo``
uses, :func:`pgsafe.undo.throwaway.recovered`), whose catalogs are read as a base
backup's map is (:func:`pgsafe.physical.catalogmap.take`): the relfilenodes are named
there, and those that were an index, a TOAST table or a sequence of the table are left
out (the table is listed).  One recovery per transaction: narrow the window (``-t``,
``--since``, ``--kind``) before asking for many.  The map is stored beside the newest
base backup before the transaction (:func:`pgsafe.physical.catalogmap.store_rebuilt`):
the next ``pgsafe mistakes`` names the table from it, without recovering again.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from pgsafe.errors import BadInput, PgsafeError
from pgsafe.mistakes.model import Mistake, MistakeReport, TableChange
from pgsafe.models.catalogmap import CatalogMap
from pgsafe.pg.connect import connect
from pgsafe.physical import catalogmap
from pgsafe.recovery.targets import TargetRequest
from pgsafe.repo.repository import Repository
from pgsafe.undo.throwaway import recovered
from pgsafe.wal import server_record

log = logging.getLogger(__name__)

TABLE_KINDS = frozenset("rmp")
SYSTEM_SCHEMAS = ("pg_catalog", "pg_toast", "information_schema")


def unnamed(m: Mistake) -> bool:
    return any(c.table is None and c.relfilenode for c in m.changes)


def _map_before(repo: Repository, m: Mistake, major: int, timeout: float) -> CatalogMap | None:
    """The catalogs of a throwaway cluster recovered to just before transaction ``m``."""
    target = TargetRequest("xid", str(m.xid))
    with (
        recovered(repo, target, m.database or "postgres", exclusive=True, major=major,
                  timeout=timeout) as (cluster, _),
        connect(cluster.conninfo()) as conn,
    ):  # fmt: skip
        return catalogmap.take(cluster.conninfo(), conn)


def _renamed(m: Mistake, cmap: CatalogMap) -> Mistake:
    d = cmap.database(m.database_oid)
    if d is None:
        return m
    out: list[TableChange] = []
    for c in m.changes:
        r = d.by_filenode(c.relfilenode) if c.table is None and c.relfilenode else None
        if r is None:
            out.append(c)
        elif r.kind in TABLE_KINDS and not r.schema.startswith(SYSTEM_SCHEMAS):
            out.append(replace(c, table=r.qualified))
        # else: an index, TOAST table or sequence of the table, which is listed itself
    return replace(m, changes=tuple(out)) if out else m


def _keep(repo: Repository, cmap: CatalogMap, m: Mistake) -> None:
    """Store the map for the next run; an aid, so a repository that refuses it (read
    only, locked too long) costs the next run a recovery, not this one its answer."""
    try:
        catalogmap.store_rebuilt(repo, cmap, m.xid, m.commit_time)
    except (PgsafeError, OSError) as exc:
        log.warning("the rebuilt catalog map was not stored: %s", exc)


def name_unnamed(repo: Repository, report: MistakeReport, timeout: float = 3600) -> MistakeReport:
    """``report`` with the relfilenodes of its unnamed transactions named (see the module);
    their notes saying how to name them are dropped."""
    record = server_record.load(repo)
    if record is None:
        raise BadInput(
            f"repository {repo.storage.url} records no server {repo.server!r}",
            hint="take a base backup with WAL archiving first",
        )
    named: list[Mistake] = []
    done: set[int] = set()
    for m in report.mistakes:
        if unnamed(m):
            cmap = _map_before(repo, m, record.pg_major or 0, timeout)
            if cmap is not None:
                _keep(repo, cmap, m)
                m = _renamed(m, cmap)
            if not unnamed(m):
                done.add(m.xid)
        named.append(m)
    notes = tuple(n for n in report.notes if not any(
        n.startswith(f"transaction {x} touched relfilenode") for x in done))  # fmt: skip
    return replace(report, mistakes=tuple(named), notes=notes)
