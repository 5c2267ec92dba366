"""What interrupted work leaves in a local repository, and ``expire``'s clean-up of it.

* ``.tmp-*`` files: an object is written under a temporary name and then linked or
  renamed into place; a writer killed in between (``wal-push`` SIGKILLed by a server
  shutdown, a base backup cut off) leaves its temporary file.  One is removed once its
  mtime is :data:`TMP_GRACE` old.  A writer that is still running writes to its file
  all the time (a WAL segment is stored in well under a second, and a base backup's
  stream moves the mtime with every write), so no running writer leaves its file
  untouched for a day: 24 hours is far beyond any pause, chosen, not measured.
* ``.lock-<server>-use-<id>`` files: one is made for every backup a restore, a
  verification or a dump used, and nothing removed them.  One is removed only when no
  process holds it: ``expire`` takes it without waiting and unlinks it while holding
  it (:meth:`PosixStorage.remove_unheld_lock`).  The repository's other locks have fixed
  names and do not pile up; they stay.

Only local repositories (and the local members of several repositories) have these:
S3 uploads are atomic and its lock leases expire by themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import LOCK_PREFIX, Storage
from pgsafe.repo.storage.posix import PosixStorage

TMP_GRACE = timedelta(hours=24)


def _local(storage: Storage) -> list[PosixStorage]:
    from pgsafe.repo.storage.mirror import MirrorStorage

    if isinstance(storage, MirrorStorage):
        return [m.storage for m in storage.members if isinstance(m.storage, PosixStorage)]
    return [storage] if isinstance(storage, PosixStorage) else []


def sweep(repo: Repository, now: datetime, *, dry_run: bool) -> list[str]:
    """Remove (with ``dry_run``, only name) this server's leftovers; the keys, with the
    repository's URL when there are several repositories."""
    stores = _local(repo.storage)
    out: list[str] = []
    older_than = (now - TMP_GRACE).timestamp()
    use_lock = f"{LOCK_PREFIX}{repo.server}-use-"
    for storage in stores:
        where = f" in {storage.url}" if len(stores) > 1 else ""
        keys = [
            *storage.leftovers("", recursive=False),  # the marker's, the locks
            *storage.leftovers(repo.server),
        ]
        for key in keys:
            name = key.rsplit("/", 1)[-1]
            if name.startswith(LOCK_PREFIX):
                removed = name.startswith(use_lock) and storage.remove_unheld_lock(
                    key, dry_run=dry_run
                )
            else:
                removed = storage.remove_leftover(key, older_than, dry_run=dry_run)
            if removed:
                out.append(key + where)
    return out
