"""The JSON shape of each entity, made in one place: what ``--json`` prints.

Every command's ``--json`` document is built here (or by the ``to_json`` of the result
it prints, named below), so that an entity — a backup above all — has one shape
wherever it appears: ``dump``, ``backup``, ``list`` and ``show`` all describe a backup
with :func:`backup`.  The shapes are a contract that scripts read (README, "Exit codes
and JSON"; ``tests/integration/test_json_shapes.py``): keys are added, never removed or
renamed.  Values are JSON's own types; kinds and states are ``str`` enums, which
``json`` writes as their text.

Entities and where their shape is made:

- a backup: :func:`backup` (``dump``, ``backup``, ``list``), :func:`backup_detail`
  (``show``), :func:`damaged_backup` (a catalog entry that cannot be read);
- a restore: :func:`restore`; a recovery: :func:`recovery`;
- a verification: :meth:`pgsafe.verify.report.VerifyResult.to_json` (``verify``,
  ``drill``); health: :meth:`pgsafe.status.health.Health.to_json` (``status``);
- the recoverable window: :func:`info`; a restore point: :func:`restore_point`;
- a retention run: :func:`expiry`;
- a destructive transaction: :func:`mistake`; a ``mistakes`` run: :func:`mistakes`;
- an undo or a table-level restore: :func:`undo` (``undo``, ``restore-table``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from pgsafe.models.kinds import BackupKind, BackupStatus
from pgsafe.models.marks import RestorePoint
from pgsafe.repo.catalog import DamagedEntry, Manifest, fingerprints_doc, physical_doc

if TYPE_CHECKING:
    from pgsafe.logical.restore import RestoreResult
    from pgsafe.mistakes.model import Mistake
    from pgsafe.mistakes.scan import MistakeReport
    from pgsafe.recovery.execute import RecoverResult
    from pgsafe.recovery.lastrecovery import LastRecovery
    from pgsafe.recovery.window import InfoReport
    from pgsafe.retention.expire import ExpiryResult
    from pgsafe.undo.model import UndoResult

Doc = dict[str, object]

# base-backup facts too long or too internal for a summary (``show`` prints them all)
_PHYSICAL_DETAIL_ONLY = ("backup_label", "wal_ranges")


def backup(m: Manifest) -> Doc:
    """One backup, as ``dump``, ``backup``, ``list`` and ``show`` print it.

    A physical backup adds its base-backup facts (timeline, start/stop LSN and WAL,
    ...) at the top level.
    """
    last = m.last_verification
    doc: Doc = {
        "id": m.id,
        "kind": m.kind,
        "server": m.server,
        "database": m.database,
        "format": m.format,
        "label": m.label,
        "started_at": m.started_at,
        "finished_at": m.finished_at,
        "size_bytes": m.size_bytes,
        "raw_bytes": m.raw_bytes,
        "status": m.status,
        "verified": None if last is None else {"at": last.at, "ok": last.ok, "kind": last.kind},
        "keep": m.keep,
        "pg_version": m.pg_version,
        "system_identifier": m.system_identifier,
    }
    if m.kind == BackupKind.PHYSICAL:
        for k, v in physical_doc(m.physical).items():
            if k not in _PHYSICAL_DETAIL_ONLY:
                doc.setdefault(k, v)
    return doc


def damaged_backup(d: DamagedEntry) -> Doc:
    """A catalog entry that cannot be read as a backup, with the keys of :func:`backup`."""
    return {
        "id": d.id,
        "kind": None,
        "server": None,
        "database": None,
        "format": None,
        "label": None,
        "started_at": None,
        "finished_at": None,
        "size_bytes": None,
        "raw_bytes": None,
        "status": BackupStatus.DAMAGED,
        "damage": d.reason,
        "verified": None,
        "keep": False,
        "pg_version": None,
        "system_identifier": None,
    }


def backup_detail(m: Manifest, contents: list[str] | None = None) -> Doc:
    """``show``: :func:`backup` plus options, objects, fingerprints, every verification
    and the base-backup facts; ``contents`` when asked for."""
    doc = backup(m)
    doc["options"] = {k: v for k, v in m.options.items() if k != "roles"}
    doc["objects"] = [o.to_dict() for o in m.objects]
    doc["fingerprint"] = fingerprints_doc(m.fingerprint)
    doc["verifications"] = [v.to_dict() for v in m.verifications]
    doc["physical"] = physical_doc(m.physical)
    if contents is not None:
        doc["contents"] = contents
    return doc


def restore(backup_id: str, result: RestoreResult, dry_run: bool) -> Doc:
    """``restore``: the plan, and once done the fingerprint checks."""
    p = result.plan
    return {
        "id": backup_id,
        "target": p.target,
        "server": p.server,
        "dry_run": dry_run,
        "plan": p.steps,
        "done": result.done,
        "ok": result.ok if result.done else None,
        "checks": [{"name": c.table, "ok": c.ok, "detail": c.detail()} for c in result.checks],
        "warnings": result.warnings,
    }


def recovery(r: RecoverResult) -> Doc:
    """``recover``: pgdata, port, target, plan, reached, checks, ok, started, running,
    state, notes, wal_fetch."""
    return {
        "pgdata": r.pgdata,
        "port": r.port,
        "target": r.target.to_json(),
        "plan": r.plan.to_json(),
        "reached": asdict(r.reached) if r.reached is not None else None,
        "checks": [asdict(c) for c in r.checks],
        "ok": r.ok,
        "started": r.started,
        "running": r.running,
        "state": r.state,
        "notes": list(r.notes),
        "wal_fetch": asdict(r.wal_fetch) if r.wal_fetch is not None else None,
    }


def _last_recovery(last: LastRecovery) -> Doc:
    """``info.last_recovery``: pgdata, finished_at, state and ``recover``'s wal_fetch."""
    return {"pgdata": last.pgdata, "finished_at": last.finished_at, "state": last.state,
            **asdict(last.wal_fetch)}  # fmt: skip


def info(r: InfoReport) -> Doc:
    """``info``: per timeline the backups, WAL range, windows, recoverable_from/to, gaps;
    the server's major and each PostgreSQL tool found for it (or its fix); how the WAL of
    the last recovery (from this machine) arrived."""
    last = r.last_recovery
    return {
        "server": r.server,
        "repo": r.repo,
        "system_identifier": r.system_identifier,
        "pg_major": r.pg_major,
        "tools": [t.to_json() for t in r.tools],
        "timelines": [t.to_json() for t in r.timelines],
        "marks": [m.to_json() for m in r.marks],
        "partials": list(r.partials),
        "last_recovery": _last_recovery(last) if last is not None else None,
    }


def restore_point(p: RestorePoint) -> Doc:
    """``mark``: the catalog record of a restore point (name, lsn, lsn_int, time,
    timeline, segment)."""
    return p.to_json()


def expiry(r: ExpiryResult, dry_run: bool) -> Doc:
    """``expire``: what was (or would be) removed, and every keep/remove decision."""
    plan = r.plan
    return {
        "dry_run": dry_run,
        "remove": plan.remove if dry_run else r.removed_backups,
        "remove_wal": plan.remove_wal if dry_run else r.removed_wal,
        "skipped": r.skipped,
        "incomplete": r.incomplete,
        "damaged": [{"id": bad.id, "damage": bad.reason} for bad in r.damaged],
        "leftovers": r.leftovers,
        "wal_kept_for_damaged": r.wal_kept_for_damaged,
        "oldest_needed_wal": plan.oldest_needed_wal,
        "decisions": [vars(d) for d in plan.decisions],
    }


def mistake(m: Mistake) -> Doc:
    """One destructive transaction (``mistakes``): xid, commit time and LSN, database,
    per table what it did, the rows in all, and the command that undoes it."""
    return {
        "xid": m.xid,
        "commit_time": m.commit_time.isoformat(),
        "lsn": m.lsn,
        "timeline": m.timeline,
        "database": m.database,
        "database_oid": m.database_oid,
        "kinds": sorted({str(c.kind) for c in m.changes}),
        "tables": [c.table for c in m.changes],
        "rows": m.rows,
        "changes": [
            {"kind": str(c.kind), "table": c.table, "relfilenode": c.relfilenode, "rows": c.rows}
            for c in m.changes
        ],
        "undo": m.undo,
    }


def mistakes(r: MistakeReport) -> Doc:
    """``mistakes``: the window read and the destructive transactions in it."""
    return {
        "window": {
            "start_time": r.start_time.isoformat() if r.start_time else None,
            "end_time": r.end_time.isoformat() if r.end_time else None,
            "start_lsn": r.start_lsn,
            "end_lsn": r.end_lsn,
            "backup": r.backup_id,
            "segments": r.segments,
            "live_segments": r.live_segments,
        },
        "mistakes": [mistake(m) for m in r.mistakes],
        "omitted": r.omitted,
        "largest_omitted": [mistake(m) for m in r.largest_omitted],
        "notes": list(r.notes),
    }


def undo(r: UndoResult) -> Doc:
    """``undo`` / ``restore-table``: the target, the plan per table (row counts by
    action, conflicts), and whether it was applied, refused or a dry run."""
    return {
        "operation": r.operation,
        "target": r.target,
        "database": r.database,
        "xid": r.xid,
        "dry_run": r.dry_run,
        "applied": r.applied,
        "refused": r.refused,
        "ok": r.applied or (r.dry_run and not r.refused),
        "rows_back": r.rows_back,
        "conflicts": r.conflicts,
        "seconds": round(r.seconds, 3),
        "tables": [
            {
                "table": t.table,
                "action": t.action,
                "kind": t.kind,
                "key": list(t.key),
                "new_name": t.new_name,
                "rows": t.rows,
                "counts": {str(a): n for a, n in t.counts.items()},
                "conflicts": [{"key": c.key, "now": c.now} for c in t.conflicts],
            }
            for t in r.tables
        ],
        "notes": list(r.notes),
    }
