"""The public library API: pgsafe's operations, with one shape of signature.

Every operation takes the repository first, then (when it needs input) one typed,
frozen request, and returns a typed result; none prints, prompts or exits — errors
are the :class:`~pgsafe.errors.PgsafeError` family (each with its ``exit_code`` and
``hint``).  The CLI is one caller of the same operations::

    from pgsafe import api

    repo = api.open_repository("/var/backups/pgsafe", create=True)
    backup = api.dump(repo, api.DumpRequest(conn=api.ConnOptions(dbname="shop")))
    assert api.verify(repo, api.VerifyRequest(backup.id)).ok

=================  ===========================  =====================================
operation          request                      result
=================  ===========================  =====================================
``dump``           :class:`DumpRequest`         :class:`Backup` (its catalog entry)
``backup``         :class:`BackupRequest`       :class:`Backup`
``restore``        :class:`RestoreRequest`      :class:`RestoreResult`
``verify``         :class:`VerifyRequest`       :class:`VerifyResult`
``recover``        :class:`RecoverRequest`      :class:`RecoverResult`
``mark``           :class:`MarkRequest`         :class:`RestorePoint`
``export``         :class:`ExportRequest`       :class:`ExportResult`
``expire``         :class:`ExpireRequest`       :class:`ExpiryResult`
``info``           (none)                       :class:`InfoReport`
``list_backups``   (none)                       ``list[Backup | DamagedEntry]``
``mistakes``       :class:`MistakeRequest`      :class:`MistakeReport`
``undo``           :class:`UndoRequest`         :class:`UndoResult`
``restore_table``  :class:`RestoreTableRequest` :class:`UndoResult`
=================  ===========================  =====================================

Backups are named in requests as the CLI names them: an id, a unique id prefix, or
``latest``.  The operations are thin wrappers over the capability packages; this
module only gives them one consistent face (``pgsafe`` re-exports it lazily, so
``wal-push`` never loads it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgsafe import clock
from pgsafe.cluster.runas import repository_owner
from pgsafe.config import Settings, state_home
from pgsafe.config import open_repository as _open_configured
from pgsafe.errors import PgsafeError
from pgsafe.logical import dump as _dump
from pgsafe.logical import export as _export
from pgsafe.logical import restore as _restore
from pgsafe.logical.dump import DumpRequest
from pgsafe.logical.export import ExportResult
from pgsafe.logical.restore import RestoreResult
from pgsafe.mistakes import scan as _mistakes
from pgsafe.mistakes.model import ChangeKind, Mistake, TableChange
from pgsafe.mistakes.scan import MistakeReport, MistakeRequest
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.physical import basebackup as _basebackup
from pgsafe.physical import marks as _marks
from pgsafe.physical.marks import RestorePoint
from pgsafe.progress import Progress
from pgsafe.recovery import execute as _recovery
from pgsafe.recovery import window as _window
from pgsafe.recovery.execute import RecoverResult
from pgsafe.recovery.targets import TargetRequest, target_request
from pgsafe.recovery.window import InfoReport
from pgsafe.repo.catalog import DamagedEntry, Manifest
from pgsafe.repo.repository import Repository
from pgsafe.retention import expire as _expire
from pgsafe.retention.expire import ExpiryResult
from pgsafe.retention.policy import from_config
from pgsafe.undo import catalog as _undo_catalog
from pgsafe.undo import run as _undo
from pgsafe.undo.model import OnConflict, RestoreTableRequest, UndoRequest, UndoResult
from pgsafe.verify.backup import verify_backup as _verify_backup
from pgsafe.verify.report import VerifyResult

Backup = Manifest
"""A backup as the catalog records it (logical or physical)."""

__all__ = [
    "Backup",
    "BackupRequest",
    "ChangeKind",
    "ConnOptions",
    "DamagedEntry",
    "DumpRequest",
    "ExpireRequest",
    "ExpiryResult",
    "ExportRequest",
    "ExportResult",
    "InfoReport",
    "MarkRequest",
    "Mistake",
    "MistakeReport",
    "MistakeRequest",
    "OnConflict",
    "PgsafeError",
    "RecoverRequest",
    "RecoverResult",
    "Repository",
    "RestorePoint",
    "RestoreRequest",
    "RestoreResult",
    "RestoreTableRequest",
    "TableChange",
    "TargetRequest",
    "UndoRequest",
    "UndoResult",
    "VerifyRequest",
    "VerifyResult",
    "backup",
    "dump",
    "expire",
    "export",
    "info",
    "list_backups",
    "mark",
    "mistakes",
    "open_repository",
    "recover",
    "restore",
    "restore_table",
    "target_request",
    "undo",
    "verify",
]


# -- requests and results this module adds --------------------------------------------
@dataclass(frozen=True)
class BackupRequest:
    """A physical base backup of the server ``conn`` reaches."""

    conn: ConnOptions = field(default_factory=ConnOptions)
    label: str | None = None


@dataclass(frozen=True)
class RestoreRequest:
    """Put logical backup ``backup`` back (see ``pgsafe restore``)."""

    backup: str
    conn: ConnOptions = field(default_factory=ConnOptions)
    create: bool = False
    clean: bool = False
    tables: tuple[str, ...] = ()
    jobs: int = 1
    dry_run: bool = False


@dataclass(frozen=True)
class VerifyRequest:
    """Verify ``backup``: checksums, a restore into a throwaway cluster, fingerprints
    (a physical backup is drilled: restored, recovered and checked).  ``home`` holds
    the throwaway clusters (default: pgsafe's state folder)."""

    backup: str = "latest"
    home: Path | None = None


@dataclass(frozen=True)
class RecoverRequest:
    """Restore a base backup into ``pgdata`` and recover it to ``target`` (see
    ``pgsafe recover``; :func:`target_request` reads the target as the flags give it).
    ``backup`` is an id (default: the newest base backup before the target)."""

    pgdata: Path
    target: TargetRequest = field(default_factory=TargetRequest)
    exclusive: bool = False
    backup: str | None = None
    timeline: int | None = None
    port: int | None = None
    start: bool = False
    promote: bool = False
    pause: bool = False
    checks: tuple[str, ...] = ()
    check_db: str = "postgres"
    dry_run: bool = False
    force: bool = False
    archive: bool = False
    timeout: float = 3600
    config: Path | None = None  # the config whose [[repos]] the repository came from


@dataclass(frozen=True)
class MarkRequest:
    """A named restore point on the server ``conn`` reaches, recorded in the catalog."""

    name: str
    conn: ConnOptions = field(default_factory=ConnOptions)


@dataclass(frozen=True)
class ExportRequest:
    """Write ``backup`` out as plain standard files into the new folder ``path``."""

    backup: str
    path: Path


@dataclass(frozen=True)
class ExpireRequest:
    """Apply the retention policy: the config's ``[retention]`` (``config``, the
    parsed config file), with ``keep_last`` / ``keep_days`` replacing it when given."""

    keep_last: int | None = None
    keep_days: float | None = None
    dry_run: bool = False
    config: Mapping[str, object] = field(default_factory=dict)


# -- operations -------------------------------------------------------------------------
def open_repository(
    where: str | Settings, *, server: str = "main", create: bool = False
) -> Repository:
    """A repository by URL (a folder or ``s3://bucket/prefix``) or by the settings of a
    config; with ``create``, made when missing (as root, owned by the PostgreSQL OS
    user, which runs ``wal-push``)."""
    owner = repository_owner() if create else None
    if isinstance(where, Settings):
        return _open_configured(where, create=create, owner=owner)
    return Repository.open(where, server, create=create, owner=owner)


def dump(repo: Repository, req: DumpRequest, *, progress: Progress | None = None) -> Backup:
    """A logical backup (pg_dump / pg_dumpall) into ``repo``; its catalog entry."""
    return _dump.dump(repo, req, progress=progress)


def backup(repo: Repository, req: BackupRequest, *, progress: Progress | None = None) -> Backup:
    """A physical base backup into ``repo``; its catalog entry."""
    return _basebackup.backup(req.conn.conninfo(), repo, label=req.label, progress=progress)


def restore(repo: Repository, req: RestoreRequest) -> RestoreResult:
    """Restore a logical backup; ``result.ok`` says the fingerprints matched."""
    m = repo.resolve(req.backup)
    inner = _restore.RestoreRequest(
        backup=m,
        conn=req.conn,
        create=req.create,
        clean=req.clean,
        tables=req.tables,
        jobs=req.jobs,
        dry_run=req.dry_run,
    )
    return _restore.restore(repo, inner)


def verify(repo: Repository, req: VerifyRequest) -> VerifyResult:
    """Prove a backup restores; recorded in its catalog entry."""
    return _verify_backup(repo, repo.resolve(req.backup), req.home or state_home())


def recover(repo: Repository, req: RecoverRequest) -> RecoverResult:
    """Restore a base backup into ``req.pgdata`` and recover it to a target (PITR)."""
    inner = _recovery.RecoverRequest(
        pgdata=req.pgdata.absolute(),
        kind=req.target.kind,
        value=req.target.value,
        exclusive=req.exclusive,
        backup_id=req.backup,
        timeline=req.timeline,
        port=req.port,
        start=req.start,
        promote=req.promote,
        pause=req.pause,
        checks=list(req.checks),
        check_db=req.check_db,
        dry_run=req.dry_run,
        force=req.force,
        archive=req.archive,
        timeout=req.timeout,
        config=req.config,
    )
    return _recovery.recover(repo, inner)


def mark(repo: Repository, req: MarkRequest) -> RestorePoint:
    """Create a named restore point and record it."""
    return _marks.mark(req.conn.conninfo(), repo, req.name)


def export(repo: Repository, req: ExportRequest) -> ExportResult:
    """Write a backup out as files that PostgreSQL's own tools read."""
    return _export.export(repo, repo.resolve(req.backup), req.path)


def expire(repo: Repository, req: ExpireRequest) -> ExpiryResult:
    """Remove expired backups and the WAL no kept backup needs (or, ``dry_run``, say
    what would go)."""
    policy = from_config(req.config, req.keep_last, req.keep_days)
    return _expire.expire(repo, policy, clock.now(), dry_run=req.dry_run)


def info(repo: Repository) -> InfoReport:
    """Per timeline: base backups, archived WAL, the recoverable window, gaps."""
    return _window.info(repo)


def list_backups(repo: Repository) -> list[Backup | DamagedEntry]:
    """Every catalog entry, oldest first; one that cannot be read is a
    :class:`DamagedEntry` naming why (pgsafe never removes it)."""
    return repo.entries()


def mistakes(repo: Repository, req: MistakeRequest) -> MistakeReport:
    """The destructive transactions (DELETE, UPDATE, TRUNCATE, DROP) of a window of WAL,
    oldest commit first, each with the command line that undoes it; with
    ``req.name_dropped``, relations no catalog names are named by throwaway recoveries."""
    report = _mistakes.find_mistakes(repo, req)
    return _undo_catalog.name_unnamed(repo, report) if req.name_dropped else report


def undo(repo: Repository, req: UndoRequest) -> UndoResult:
    """Bring back into the live database what a transaction deleted, changed, truncated
    or dropped (or everything since a time or restore point), in one transaction; a
    plan with conflicts and no ``on_conflict`` comes back ``refused``, nothing changed."""
    return _undo.undo(repo, req)


def restore_table(repo: Repository, req: RestoreTableRequest) -> UndoResult:
    """A table as of any moment of the recoverable window, into the live database under
    a new name (the cluster is not rolled back)."""
    return _undo.restore_table(repo, req)
