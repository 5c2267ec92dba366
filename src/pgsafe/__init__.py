"""pgsafe: PostgreSQL backup, restore and point-in-time recovery that proves every restore.

The library API is :mod:`pgsafe.api` (``from pgsafe import api``); its names are also
reachable here (``pgsafe.dump``, ``pgsafe.open_repository``, ...), loaded on first use so
that ``wal-push``, which PostgreSQL starts once per WAL segment, never pays for them.
``verify`` is the one exception: ``pgsafe.verify`` is the package of that name, so the
operation is ``pgsafe.api.verify``.
"""

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from pgsafe.api import (
        Backup,
        BackupRequest,
        ConnOptions,
        DamagedEntry,
        DumpRequest,
        ExpireRequest,
        ExpiryResult,
        ExportRequest,
        ExportResult,
        InfoReport,
        MarkRequest,
        PgsafeError,
        RecoverRequest,
        RecoverResult,
        Repository,
        RestorePoint,
        RestoreRequest,
        RestoreResult,
        TargetRequest,
        VerifyRequest,
        VerifyResult,
        backup,
        dump,
        expire,
        export,
        info,
        list_backups,
        mark,
        open_repository,
        recover,
        restore,
        target_request,
    )

__all__ = [
    "Backup",
    "BackupRequest",
    "ConnOptions",
    "DamagedEntry",
    "DumpRequest",
    "ExpireRequest",
    "ExpiryResult",
    "ExportRequest",
    "ExportResult",
    "InfoReport",
    "MarkRequest",
    "PgsafeError",
    "RecoverRequest",
    "RecoverResult",
    "Repository",
    "RestorePoint",
    "RestoreRequest",
    "RestoreResult",
    "TargetRequest",
    "VerifyRequest",
    "VerifyResult",
    "backup",
    "dump",
    "expire",
    "export",
    "info",
    "list_backups",
    "mark",
    "open_repository",
    "recover",
    "restore",
    "target_request",
]
_API = frozenset(__all__)


def __getattr__(name: str) -> object:
    # Only the API's names: ``from pgsafe import clock`` asks here first, and must be
    # told "no such attribute" to go on and import the submodule.
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pgsafe import api

    value = getattr(api, name)
    globals()[name] = value
    return value
