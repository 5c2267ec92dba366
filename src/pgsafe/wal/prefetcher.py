"""``wal-get``'s prefetcher: fetch, decode and verify the next segments into the spool.

When PostgreSQL asks ``wal-get`` for segment N and no prefetcher holds the spool's lock
(:mod:`pgsafe.wal.spool`), ``wal-get`` starts one (:func:`spawn`): a detached process
(its own session, stdin/stdout/stderr on /dev/null) forked from itself, so it runs as
the server's OS user with the very repository settings of the restore_command.  It:

* takes the lock (a second one exits at once) and removes whatever a crashed
  predecessor left in the spool (never used: see :mod:`pgsafe.wal.spool`);
* follows the journal: the last segment asked for is the cursor, the history files
  PostgreSQL fetched say the timeline it recovers to.  The next ``depth`` segments
  after the cursor, each on the timeline PostgreSQL will ask for it
  (:func:`pgsafe.wal.history.timeline_for_segment`: after a switch, the new
  timeline's copy of the switch segment and the ones that follow), are fetched by
  ``jobs`` threads with the strict decoder of :func:`pgsafe.wal.get.decode_into`
  (checksums; several repositories: the next copy), written as ``.tmp-NAME``,
  renamed, and their sha256 recorded;
* stops at a segment the archive does not hold (the end of the archive: PostgreSQL
  stops there too) and never fetches past it; a ``.partial``, ``.backup`` or
  ``.history`` file is never prefetched;
* answers each request of the journal (``want NAME``, a segment or history file that
  ``wal-get`` did not find in the spool) at once, by a thread of its own: the file into
  the spool, or a marker that it is not archived or could not be read
  (:func:`pgsafe.wal.spool.answer`) — the repository is open already, so this costs
  one lookup where a new ``wal-get`` process would import and open it all again;
* removes what falls behind the cursor or off the predicted path;
* exits — removing every segment, and the journal unless a waiting ``recover`` asked
  to keep it — when recovery ended (``recovery.signal`` is gone), the server is gone
  (its postmaster pid), the spool folder was removed, it is told to (SIGTERM), or
  nothing was asked for :data:`IDLE_S` seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from pgsafe.wal import history, names, spool

if TYPE_CHECKING:
    from collections.abc import Callable

    from pgsafe.repo.repository import Repository

IDLE_S = 30.0
POLL_S = 0.02
MAX_DEPTH = 256
MAX_JOBS = 32


def default_jobs(cpus: int | None = None) -> int:
    """Fetching threads: half the cores, 1 to 8 (2 cores: 1; 16 cores: 8)."""
    n = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, min(8, n // 2))


def default_depth(cpus: int | None = None) -> int:
    """Segments kept ahead: twice the threads, at least 8 (2 cores: 8 = 128 MiB of
    16 MiB segments; 16 cores: 16)."""
    return max(8, 2 * default_jobs(cpus))


def _postmaster(datadir: str) -> int | None:
    try:
        with open(os.path.join(datadir, "postmaster.pid"), "rb") as f:
            first = f.readline().strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Prefetcher:
    """One prefetcher's state (see the module docstring)."""

    def __init__(
        self, path: str, dfd: int, datadir: str, repo: Repository, depth: int, jobs: int
    ) -> None:
        self.path, self.dfd, self.datadir, self.repo = path, dfd, datadir, repo
        self.depth, self.jobs = max(1, min(depth, MAX_DEPTH)), max(1, min(jobs, MAX_JOBS))
        self.cursor: str | None = None
        self.target_tli = 0
        self.path_spans: list[history.Span] | None = None
        self.missing: set[str] = set()
        self.failed: set[str] = set()
        self.flying: dict[str, Future[str]] = {}
        self.asked: list[str] = []  # requests (want NAME) not answered yet, in order
        self.answered: set[str] = set()  # answers not taken yet (kept by tidy)
        self.stop = threading.Event()
        self.last_activity = time.monotonic()
        self.segment_size = names.DEFAULT_SEGMENT_SIZE

    # -- the journal ---------------------------------------------------------
    def follow(self, text: str) -> None:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[0] not in ("want", "got"):
                continue
            name = parts[1]
            self.last_activity = time.monotonic()
            if parts[0] == "want":  # asked again (a standby polls): look again past it
                self.missing.clear()
                self.failed.clear()
                if spool.is_spooled(name) and name not in self.asked:
                    self.asked.append(name)
            else:  # answered: by the spool, the prefetcher's marker, or wal-get itself
                self.answered.discard(name)
                if name in self.asked:
                    self.asked.remove(name)
            if spool.is_segment(name):
                self.cursor = name
                if len(parts) > 2 and parts[2] == "missing":
                    self.missing.add(name)
            elif (
                len(parts) > 2
                and parts[2] in ("fetched", "spool")
                and name.endswith(".history")
                and names.parse(name) is not None
            ):
                tli = int(name[:8], 16)
                if tli > self.target_tli:
                    self.target_tli = tli
                    self.path_spans = self._load_path(name)

    def _load_path(self, name: str) -> list[history.Span] | None:
        """The path of timelines to ``name``'s timeline, from the archive."""
        import tempfile

        from pgsafe.wal.get import decode_into

        try:
            with tempfile.TemporaryFile() as f:
                found, _ = decode_into(self.repo, name, f.fileno())
                if not found:
                    return None
                f.seek(0)
                text = f.read(1 << 20).decode("utf-8", "replace")
            return history.path_to(int(name[:8], 16), history.parse_history(text))
        except Exception:  # untrusted or unreadable: predict on the cursor's timeline
            return None

    # -- what to fetch -------------------------------------------------------
    def wanted(self) -> list[str]:
        """The next segments PostgreSQL will ask for, nearest first."""
        if self.cursor is None:
            return []
        tli = int(self.cursor[:8], 16)
        segno = names.segment_number(self.cursor, self.segment_size)
        out: list[str] = []
        for s in range(segno + 1, segno + 1 + self.depth):
            t = tli
            if self.path_spans is not None:
                t = max(tli, history.timeline_for_segment(self.path_spans, s, self.segment_size))
            name = names.segment_name(t, s, self.segment_size)
            if name in self.missing or name in self.failed:
                break
            out.append(name)
        return out

    def tidy(self, wanted: list[str]) -> None:
        """Remove what is neither wanted nor being written."""
        keep = set(wanted) | self.answered
        for entry in list(spool.entries(self.dfd)):
            base = entry[len(spool.TMP) :] if entry.startswith(spool.TMP) else entry
            for suffix in (spool.SUM, spool.NOTE, spool.MISSING, spool.FAILED):
                base = base.removesuffix(suffix)
            if base in self.flying or (base in keep and not entry.startswith(spool.TMP)):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry, dir_fd=self.dfd)

    def _present(self, name: str) -> bool:
        """Fetched and not taken (the shell path takes the file and leaves its sum)."""
        try:
            os.stat(name + spool.SUM, dir_fd=self.dfd, follow_symlinks=False)
            os.stat(name, dir_fd=self.dfd, follow_symlinks=False)
            return True
        except OSError:
            return False

    # -- fetching ------------------------------------------------------------
    def answer(self, name: str) -> str:
        """Answer ``want NAME``: the file into the spool, else a marker saying it is
        not archived or could not be read (:func:`pgsafe.wal.spool.answer`)."""
        got = self.fetch(name)
        if got != "spool":
            with contextlib.suppress(OSError):
                self._write_small(name + (spool.MISSING if got == "missing" else spool.FAILED),
                                  b"")  # fmt: skip
        return got

    def fetch(self, name: str) -> str:
        """Fetch ``name`` into the spool: ``"spool"``, ``"missing"`` or ``"failed"``."""
        from pgsafe.wal.get import decode_into

        tmp = spool.TMP + name
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=self.dfd)
        except OSError:
            self.failed.add(name)
            return "failed"
        done = False
        try:
            found, digest = decode_into(self.repo, name, fd, digest=True)
            if not found:
                self.missing.add(name)
                return "missing"
            if self.stop.is_set() or digest is None:
                return "failed"
            notes = [n for n in self.repo.notes if n.startswith(f"{name}: ")]
            if notes:  # wal-get prints them when it takes the segment: the server log
                self._write_small(name + spool.NOTE, "".join(n + "\n" for n in notes).encode())
            os.rename(tmp, name, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
            done = True
            spool.write_sum(self.dfd, name, digest, fd)
        except Exception:  # damaged, unreadable: wal-get reads it itself and says why
            self.failed.add(name)
            return "failed"
        finally:
            os.close(fd)
            if not done:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=self.dfd)
        return "spool"

    def _answer_requests(self, asks: ThreadPoolExecutor) -> None:
        """Start answering each request; one whose file is being fetched already waits
        for that fetch (then it is answered, unless the file is in the spool)."""
        waiting = []
        for name in self.asked:
            if name in self.flying:
                self.answered.add(name)  # tidy keeps it for the wal-get that asked
                waiting.append(name)
            elif not self._present(name):
                self.answered.add(name)
                self.flying[name] = asks.submit(self.answer, name)
        self.asked = waiting

    def _write_small(self, final: str, data: bytes) -> None:
        tmp = spool.TMP + final
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=self.dfd)  # fmt: skip
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, final, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)

    # -- the loop ------------------------------------------------------------
    def _should_exit(self, postmaster: int | None) -> bool:
        if self.stop.is_set() or os.fstat(self.dfd).st_nlink == 0:
            return True
        if postmaster is None or not _alive(postmaster) or _postmaster(self.datadir) != postmaster:
            return True
        if not os.path.exists(os.path.join(self.datadir, "recovery.signal")):
            return not os.path.exists(os.path.join(self.datadir, "standby.signal"))
        return not self.flying and time.monotonic() - self.last_activity > IDLE_S

    def run(self) -> None:
        from pgsafe.wal import server_record

        postmaster = _postmaster(self.datadir)
        try:
            record = server_record.load(self.repo)
            if record is not None:
                self.segment_size = record.wal_segment_size
        except Exception:
            pass
        self.tidy([])  # what a crashed prefetcher left is never used
        self._write_small(spool.READY, f"{os.getpid()}\n".encode())  # wal-get may ask now
        jfd = os.open(spool.JOURNAL, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=self.dfd)  # fmt: skip
        pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="pgsafe-prefetch")
        asks = ThreadPoolExecutor(1, thread_name_prefix="pgsafe-asked")  # not behind the pool
        pending = b""
        try:
            while not self._should_exit(postmaster):
                chunk = os.read(jfd, 1 << 16)
                while chunk:
                    pending += chunk
                    chunk = os.read(jfd, 1 << 16)
                if b"\n" in pending:
                    text, _, pending = pending.rpartition(b"\n")
                    self.follow(text.decode("ascii", "replace"))
                self.flying = {n: f for n, f in self.flying.items() if not f.done()}
                self._answer_requests(asks)
                wanted = self.wanted()
                self.tidy(wanted)
                for name in wanted:
                    if len(self.flying) >= self.jobs:
                        break
                    if name not in self.flying and not self._present(name):
                        self.flying[name] = pool.submit(self.fetch, name)
                time.sleep(POLL_S)
        finally:
            self.stop.set()
            asks.shutdown(wait=True, cancel_futures=True)
            pool.shutdown(wait=True, cancel_futures=True)
            os.close(jfd)
            self.flying = {}
            self.close()

    def close(self) -> None:
        """Remove every segment; the journal too unless a recover keeps it; the folder
        when it is then empty (and its parent lets us)."""
        self.tidy([])
        with contextlib.suppress(OSError):
            os.unlink(spool.READY, dir_fd=self.dfd)
        if not os.path.exists(os.path.join(self.path, spool.KEEP)):
            for n in (spool.JOURNAL, spool.LOCK):
                with contextlib.suppress(OSError):
                    os.unlink(n, dir_fd=self.dfd)
            try:
                if os.path.samestat(os.stat(self.path, follow_symlinks=False), os.fstat(self.dfd)):
                    os.rmdir(self.path)
            except OSError:
                pass


def _lock(dfd: int) -> int | None:
    """The spool's lock, held by this process (its descriptor), or None when another
    process holds it."""
    import fcntl

    try:
        fd = os.open(spool.LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dfd)  # fmt: skip
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def spawn(
    path: str, open_repo: Callable[[], Repository], depth: int | None, jobs: int | None
) -> None:
    """Start a detached prefetcher for the spool at ``path`` (the caller goes on at once;
    the data directory is the current folder, as PostgreSQL runs restore_command)."""
    datadir = os.getcwd()
    if _postmaster(datadir) is None:
        return  # not run by a server: nothing to prefetch for
    try:
        child = os.fork()
    except OSError:
        return
    if child:
        os.waitpid(child, 0)
        return
    code = 0
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        _serve(path, datadir, open_repo, depth, jobs)
    except BaseException:
        code = 1
    os._exit(code)


def _serve(
    path: str,
    datadir: str,
    open_repo: Callable[[], Repository],
    depth: int | None,
    jobs: int | None,
) -> None:
    dfd = spool.open_spool(path)
    if dfd is None:
        return
    lock = _lock(dfd)
    if lock is None:
        return
    with contextlib.suppress(OSError):  # a crashed predecessor's: not ready yet
        os.unlink(spool.READY, dir_fd=dfd)
    p = Prefetcher(
        path,
        dfd,
        datadir,
        open_repo(),
        depth if depth is not None else default_depth(),
        jobs if jobs is not None else default_jobs(),
    )
    signal.signal(signal.SIGTERM, lambda *_: p.stop.set())
    p.run()


def stop(path: str, timeout: float = 10.0) -> None:
    """Stop the prefetcher of the spool at ``path`` (the kernel names the lock's holder:
    no pid is read from the spool), waiting until it let go of the lock."""
    dfd = spool.open_spool(path)
    if dfd is None:
        return
    try:
        deadline = time.monotonic() + timeout
        pid = spool.holder(dfd)
        sig = signal.SIGTERM
        while pid is not None and time.monotonic() < deadline + 5:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
            time.sleep(0.05)
            if time.monotonic() > deadline:
                sig = signal.SIGKILL
            pid = spool.holder(dfd)
    finally:
        os.close(dfd)


def remove(path: str) -> None:
    """Stop the prefetcher and remove the spool folder (nothing followed through a link:
    ``shutil.rmtree`` works from descriptors)."""
    import shutil

    stop(path)
    shutil.rmtree(path, ignore_errors=True)
