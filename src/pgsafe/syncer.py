"""Make files durable while they, or the next ones, are still being written.

fsync at the end of a large write waits for all of it to reach the disk; fsyncs issued
from a thread as the writing goes overlap the disk's writeback with the work that
produces the bytes.  Two users:

* ``recover``'s extraction (:mod:`pgsafe.recovery.untar`).  PostgreSQL fsyncs every
  file of a data directory when it starts from a backup (``SyncDataDirectory``).  Left
  to that moment, the whole restored directory is still dirty in the page cache and
  the start waits for all of it to reach the disk: on pgbench scale 100 (1.5 GiB),
  2.3 s spent after an extraction of 2.3 s, serially.  With each finished file fsynced
  and closed by the thread, and a large file fsynced every :data:`SYNC_EVERY` bytes
  while it is written, the writeback overlaps the extraction (pgBackRest restores the
  same way, fsyncing each file it writes) and PostgreSQL's own sync at start-up finds
  clean files.
* the posix storage's ``put`` of a large object (a base backup's archive): its temporary
  file is fsynced every :data:`SYNC_EVERY` bytes, so the final fsync before the rename
  has little left to write.

``os.fsync`` releases the GIL, so the thread costs the writer nothing.

The thread owns the descriptors handed to it: it fsyncs and closes them in order.  The
first fsync error is kept and raised by :meth:`finish`: a restore or a backup whose
files cannot be made durable has failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pgsafe.errors import OperationFailed

TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue
    import threading

SYNC_EVERY = 32 << 20  # fsync a file being written every 32 MiB (see the module docstring)
QUEUE_ITEMS = 64  # bounds the descriptors open at once

_Item = tuple[int, str, bool] | None  # (fd, name, close after the fsync)


class Syncer:
    """fsync (and close) descriptors in a thread; :meth:`finish` waits for all of them.

    The thread (and the threading and queue modules) start with the first descriptor
    handed over: a small ``put`` of the posix storage, as wal-push makes, never pays
    for them."""

    def __init__(self, fsync: Callable[[int], None] = os.fsync) -> None:
        self._fsync = fsync
        self._queue: queue.Queue[_Item] | None = None
        self._thread: threading.Thread | None = None
        self._error: tuple[str, OSError] | None = None
        self._unsynced: dict[int, int] = {}  # fd -> bytes written since its last fsync
        self._done = False

    def wrote(self, fd: int, name: str, nbytes: int) -> None:
        """``nbytes`` more were written to ``fd``: fsync it once :data:`SYNC_EVERY` have
        accumulated since the last time.  The caller keeps writing and still owns it."""
        n = self._unsynced.get(fd, 0) + nbytes
        if n >= SYNC_EVERY:
            self._put((fd, name, False))
            n = 0
        self._unsynced[fd] = n

    def sync_and_close(self, fd: int, name: str) -> None:
        """fsync then close ``fd``; from now on the syncer owns it."""
        self._unsynced.pop(fd, None)
        self._put((fd, name, True))

    def finish(self) -> None:
        """Wait until every descriptor handed over is synced and closed; raise the first
        fsync error."""
        self._stop()
        if self._error is not None:
            name, exc = self._error
            raise OperationFailed(
                f"could not make {name} durable: {exc.strerror or exc}",
                hint="check the disk and the file system, then try again",
            )

    def abort(self) -> None:
        """After an error elsewhere: close what is left (the fsyncs still run)."""
        self._stop()

    def _put(self, item: _Item) -> None:
        if self._queue is None:
            import queue
            import threading

            self._queue = queue.Queue(QUEUE_ITEMS)
            self._thread = threading.Thread(target=self._run, name="syncer", daemon=True)
            self._thread.start()
        self._queue.put(item)

    def _stop(self) -> None:
        if not self._done:
            self._done = True
            if self._queue is not None and self._thread is not None:
                self._queue.put(None)
                self._thread.join()

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            fd, name, close = item
            try:
                if self._error is None:
                    self._fsync(fd)
            except OSError as exc:
                self._error = (name, exc)
            finally:
                if close:
                    os.close(fd)


def fsync_directory(path: str, fsync: Callable[[int], None] = os.fsync) -> None:
    """fsync a folder, so the names of the files created in it are durable too."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fsync(fd)
    finally:
        os.close(fd)
