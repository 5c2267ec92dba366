"""What the repository holds for recovery: physical backups, archived WAL, history files
and named restore points, turned into the plain data the planner works on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgsafe.errors import NotFound
from pgsafe.recovery.plan import ArchiveState, BackupRef
from pgsafe.recovery.timelines import parse_history
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import read_all
from pgsafe.wal import layout, names, server_record
from pgsafe.wal.get import find


@dataclass(frozen=True)
class Inventory:
    backups: list[BackupRef]
    manifests: dict[str, Manifest]
    archive: ArchiveState
    partials: list[str]
    mtimes: dict[tuple[int, int], float]
    timezone: str | None


def backup_ref(m: Manifest) -> BackupRef | None:
    p = m.physical
    try:
        return BackupRef(
            id=m.id,
            timeline=int(p["timeline"]),
            start_lsn=names.parse_lsn(p["start_lsn"]),
            stop_lsn=names.parse_lsn(p["stop_lsn"]),
            finished_at=datetime.fromisoformat(m.finished_at),
            next_xid=int(p["next_xid"]) if p.get("next_xid") is not None else None,
        )
    except (KeyError, ValueError):
        return None


def read_history(repo: Repository, timeline: int) -> list[tuple[int, int]] | None:
    wal = names.parse(names.history_name(timeline))
    assert wal is not None
    try:
        key, f = find(repo.storage, repo.server, wal, repo.codec_spec().suffix)
    except NotFound:
        return None
    with f:
        text = b"".join(repo.decoder(key.rsplit("/", 1)[-1]).decode(f, what=wal.name))
    return parse_history(text.decode())


def load(repo: Repository) -> Inventory:
    record = server_record.load(repo)
    size = record.wal_segment_size if record else names.DEFAULT_SEGMENT_SIZE
    manifests = {m.id: m for m in repo.list_backups() if m.kind == "physical" and m.status == "ok"}
    refs = [r for r in (backup_ref(m) for m in manifests.values()) if r is not None]
    segments: dict[int, set[int]] = {}
    histories: dict[int, list[tuple[int, int]]] = {}
    partials: list[str] = []
    mtimes: dict[tuple[int, int], float] = {}
    for key in repo.storage.list(layout.wal_prefix(repo.server)):
        fname = layout.name_of_key(key)
        wal = names.parse(fname) if fname else None
        if wal is None:
            continue
        if wal.kind == "segment":
            segno = names.segment_number(wal.name, size)
            segments.setdefault(wal.timeline, set()).add(segno)
            st = repo.storage.stat(key)
            mtimes[(wal.timeline, segno)] = st.mtime if st else 0.0
        elif wal.kind == "history":
            h = read_history(repo, wal.timeline)
            if h is not None:
                histories[wal.timeline] = h
        elif wal.kind == "partial":
            partials.append(wal.name)
    newest = max(manifests.values(), key=lambda m: m.finished_at, default=None)
    tz = newest.physical.get("timezone") if newest else None
    archive = ArchiveState(size, {t: frozenset(s) for t, s in segments.items()}, histories)
    return Inventory(refs, manifests, archive, partials, mtimes, tz)


def load_mark(repo: Repository, name: str) -> dict[str, Any] | None:
    key = layout.mark_key(repo.server, name)
    if repo.storage.stat(key) is None:
        return None
    doc = json.loads(read_all(repo.storage, key))
    return doc if isinstance(doc, dict) else None


def marks(repo: Repository) -> list[dict[str, Any]]:
    out = []
    for key in repo.storage.list(f"{repo.server}/marks"):
        doc = json.loads(read_all(repo.storage, key))
        if isinstance(doc, dict):
            out.append(doc)
    return sorted(out, key=lambda d: str(d.get("lsn_int", 0)))
