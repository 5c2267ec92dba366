"""``pgsafe expire``: apply the retention plan to a repository.

The plan is computed under the repository's ``expire`` lock.  Each backup to remove is
locked (``in_use``) before its manifest and objects are deleted, so a restore that
started after planning keeps its backup.  ``--dry-run`` computes the same plan and
changes nothing.

A catalog entry that cannot be read as a backup (DAMAGED: bad JSON, a wrong type, a bad
id...) is never removed and never counted: expire cannot know its kind, series or age,
and deleting what it cannot read would turn a damaged manifest — an accident, or an
attacker's edit that a user could still repair from a copy — into lost data.  It is
left in place and reported (``damaged`` in the result, a warning in the log), and the
rest of the plan goes ahead, so one bad entry never stops retention — except for WAL:
while any entry is damaged no WAL is removed, since it may be a base backup that needs
it.  Likewise a folder whose name is not a pgsafe backup id is never removed as an
interrupted backup.

Leftovers of interrupted work — temporary files a day old, use-lock files nobody holds —
go too (:mod:`pgsafe.retention.leftovers`), and the dry run names them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pgsafe.errors import BadInput, RepositoryError
from pgsafe.repo.catalog import DamagedEntry, Manifest
from pgsafe.repo.catalog_names import backup_id_problem
from pgsafe.repo.repository import Repository
from pgsafe.retention import leftovers
from pgsafe.retention.plan import ExpiryPlan, plan_expiry
from pgsafe.retention.policy import Policy
from pgsafe.wal import layout, names, server_record

log = logging.getLogger(__name__)


@dataclass
class ExpiryResult:
    plan: ExpiryPlan
    dry_run: bool
    removed_backups: list[str] = field(default_factory=list)
    removed_wal: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    damaged: list[DamagedEntry] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # see pgsafe.retention.leftovers
    wal_kept_for_damaged: bool = False  # no WAL removed: a damaged entry may need it


def archived_wal(repo: Repository) -> dict[str, str]:
    """Archive file name -> storage key, for every archived WAL file of the server."""
    out: dict[str, str] = {}
    for key in repo.storage.list(layout.wal_prefix(repo.server)):
        name = layout.name_of_key(key)
        if name is not None:
            out[name] = key
    return out


STALE_AFTER = timedelta(hours=1)


def incomplete_backups(repo: Repository, now: datetime) -> list[str]:
    """Backup folders without a manifest (interrupted backups), no longer written to:
    not locked by a running backup, and untouched for an hour."""
    folders: dict[str, float] = {}
    prefix = f"{repo.server}/backups/"
    for key in repo.storage.list(f"{repo.server}/backups"):
        backup_id = key[len(prefix) :].split("/", 1)[0]
        st = repo.storage.stat(key)
        folders[backup_id] = max(folders.get(backup_id, 0.0), st.mtime if st else 0.0)
    complete = set(repo.backup_ids())
    cutoff = (now - STALE_AFTER).timestamp()
    return sorted(
        b
        for b, mtime in folders.items()
        if b not in complete
        and backup_id_problem(b) is None  # not a folder pgsafe made: never ours to remove
        and mtime < cutoff
        and not _locked_now(repo, b)
    )


def _locked_now(repo: Repository, backup_id: str) -> bool:
    try:
        with repo.in_use(backup_id, wait=False):
            return False
    except RepositoryError:
        return True


def expire(repo: Repository, policy: Policy, now: datetime, *, dry_run: bool) -> ExpiryResult:
    if policy.logical.empty and policy.physical.empty:
        raise BadInput(
            "no retention policy: nothing would be removed",
            hint="set [retention] keep_last / keep_days in the config, or pass "
            "--keep-last N / --keep-days D",
        )
    with repo.lock("expire"):
        entries = repo.entries()
        backups = [e for e in entries if isinstance(e, Manifest)]
        damaged = [e for e in entries if isinstance(e, DamagedEntry)]
        in_use = frozenset(m.id for m in backups if _locked_now(repo, m.id))
        wal = archived_wal(repo)
        segment_size = _segment_size(repo)
        # a damaged entry may be a base backup: its WAL stays until it is repaired or removed
        plan = plan_expiry(
            backups,
            policy,
            now,
            in_use=in_use,
            wal_names={} if damaged else wal,
            segment_size=segment_size,
        )
        result = ExpiryResult(plan, dry_run, incomplete=incomplete_backups(repo, now))
        result.damaged = damaged
        result.wal_kept_for_damaged = bool(damaged and wal)
        for d in result.damaged:
            log.warning("left damaged catalog entry %r: %s", d.id, d.reason)
        if dry_run:
            result.leftovers = leftovers.sweep(repo, now, dry_run=True)
            return result
        for backup_id in result.incomplete:
            with repo.in_use(backup_id, wait=False):
                repo.delete_backup(backup_id)
            log.info("removed interrupted backup %s", backup_id)
        for backup_id in plan.remove:
            try:
                with repo.in_use(backup_id, wait=False):
                    repo.delete_backup(backup_id)
            except RepositoryError:
                result.skipped.append(backup_id)
                continue
            log.info("expired backup %s", backup_id)
            result.removed_backups.append(backup_id)
        for name in plan.remove_wal:
            repo.storage.delete(wal[name])
            repo.storage.delete(layout.digest_key(repo.server, name))  # encrypted repositories
            result.removed_wal.append(name)
        result.leftovers = leftovers.sweep(repo, now, dry_run=False)
        for key in result.leftovers:
            log.info("removed leftover %s", key)
        return result


def _segment_size(repo: Repository) -> int:
    rec = server_record.load(repo)
    return rec.wal_segment_size if rec is not None else names.DEFAULT_SEGMENT_SIZE
