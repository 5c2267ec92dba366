"""What the repository holds for recovery: physical backups, archived WAL, history files
and named restore points, turned into the plain data the planner works on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from pgsafe.errors import BadInput, VerificationFailed
from pgsafe.models.kinds import BackupKind, BackupStatus
from pgsafe.models.marks import DamagedMark, RestorePoint
from pgsafe.recovery.plan import ArchiveState, BackupRef
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import RECORD_LIMIT, read_all
from pgsafe.wal import layout, names, server_record
from pgsafe.wal.timelines import read_history

_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")


@dataclass(frozen=True)
class Inventory:
    backups: list[BackupRef]
    manifests: dict[str, Manifest]
    archive: ArchiveState
    partials: list[str]
    mtimes: dict[tuple[int, int], float]
    timezone: str | None


def backup_ref(m: Manifest) -> BackupRef | None:
    """The planner's view of a physical backup; None when its catalog entry lacks it."""
    p = m.physical
    if p.timeline is None or not 1 <= p.timeline <= 0xFFFFFFFF:
        return None
    if p.start_lsn is None or p.stop_lsn is None:
        return None
    return BackupRef(
        id=m.id,
        timeline=p.timeline,
        start_lsn=names.parse_lsn(p.start_lsn),
        stop_lsn=names.parse_lsn(p.stop_lsn),
        finished_at=datetime.fromisoformat(m.finished_at),
        next_xid=p.next_xid,
    )


def load(repo: Repository) -> Inventory:
    record = server_record.load(repo)
    size = record.wal_segment_size if record else names.DEFAULT_SEGMENT_SIZE
    manifests = {
        m.id: m
        for m in repo.list_backups()
        if m.kind == BackupKind.PHYSICAL and m.status == BackupStatus.OK
    }
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
    tz = newest.physical.timezone if newest else None
    if tz is None or not _ZONE.match(tz):
        tz = None  # a zone name is looked up on disk: only a plain IANA name is used
    archive = ArchiveState(size, {t: frozenset(s) for t, s in segments.items()}, histories)
    return Inventory(refs, manifests, archive, partials, mtimes, tz)


def _checked_mark(doc: object, name: str | None = None) -> RestorePoint:
    """A restore point's record from the repository, checked (ValueError otherwise)."""
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    mark_name, lsn_int, lsn = doc.get("name"), doc.get("lsn_int"), doc.get("lsn")
    if not isinstance(mark_name, str) or not names.RESTORE_POINT.match(mark_name):
        raise ValueError("bad name")
    if name is not None and mark_name != name:
        raise ValueError(f"it names {mark_name!r}")
    if type(lsn_int) is not int or not 0 <= lsn_int < 1 << 64:
        raise ValueError("bad lsn_int")
    if not isinstance(lsn, str) or names.format_lsn(lsn_int) != lsn:
        raise ValueError("lsn and lsn_int disagree")
    time, timeline, segment = doc.get("time"), doc.get("timeline"), doc.get("segment")
    if not isinstance(time, str):
        raise ValueError("bad time")
    datetime.fromisoformat(time)
    if timeline is not None and (type(timeline) is not int or not 1 <= timeline <= 0xFFFFFFFF):
        raise ValueError("bad timeline")
    if segment is not None and (not isinstance(segment, str) or names.parse(segment) is None):
        raise ValueError("bad segment")
    return RestorePoint(mark_name, lsn, lsn_int, time, timeline, segment)


def load_mark(repo: Repository, name: str) -> RestorePoint | None:
    """The restore point ``name`` (checked like ``pgsafe mark`` checks it), or None."""
    if not names.RESTORE_POINT.match(name):
        raise BadInput(
            f"bad restore point name {name!r}",
            hint="use letters, digits, '_', '.', ':' and '-' (at most 63 characters)",
        )
    key = layout.mark_key(repo.server, name)
    if repo.storage.stat(key) is None:
        return None
    try:
        return _checked_mark(json.loads(read_all(repo.storage, key, RECORD_LIMIT)), name)
    except (ValueError, TypeError, RecursionError) as exc:
        raise VerificationFailed(
            f"the restore point record {key} is damaged ({exc})",
            hint="use --lsn or --time instead, or remove the record",
        ) from None


def marks(repo: Repository) -> list[RestorePoint | DamagedMark]:
    """Every valid restore point; a damaged record is listed by name as damaged."""
    out: list[RestorePoint | DamagedMark] = []
    for key in repo.storage.list(f"{repo.server}/marks"):
        try:
            out.append(_checked_mark(json.loads(read_all(repo.storage, key, RECORD_LIMIT))))
        except (ValueError, TypeError, RecursionError, VerificationFailed) as exc:
            stem = key.rsplit("/", 1)[-1].removesuffix(".json")
            shown = stem if names.RESTORE_POINT.match(stem) else repr(stem)[:70]
            out.append(DamagedMark(shown, str(exc)[:200]))
    return sorted(out, key=lambda m: m.lsn_int if isinstance(m, RestorePoint) else 0)
