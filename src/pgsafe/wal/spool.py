"""``wal-get``'s prefetch spool: a private folder of segments fetched ahead (lean).

``pgsafe recover`` makes the folder beside the data directory (``<pgdata>.spool-<id>``,
a new id for each recovery, the server's OS user's, mode 0700) and names it in the
restore_command (``wal-get --spool DIR %f %p``).  The prefetcher
(:mod:`pgsafe.wal.prefetcher`) writes into it; each ``wal-get`` takes from it.  Layout::

    lock            held (a POSIX lock) by the one live prefetcher: the kernel says who
    ready           made by that prefetcher once its repository is open (it answers):
                    its pid, for the restore_command's shell path (:func:`shell_take`)
    journal         one line per request, appended by wal-get: ``want NAME`` before a
                    fetch, ``got NAME SOURCE SECONDS`` after (the prefetcher follows
                    it; recover sums it up: :func:`read_stats`)
    keep-journal    made by a recover that waits for the end: the journal outlives it
    NAME            a segment (or a history file asked for), decoded and verified,
                    complete (written as .tmp-NAME)
    NAME.sum        ``sha256 size inode mtime_ns ctime_ns`` of NAME, written after it
    NAME.note       notes of its fetch (a copy read from another repository), which
                    wal-get prints when it takes NAME: they land in the server log
    NAME.missing    the prefetcher's answer to ``want NAME``: not archived
    NAME.failed     the same: it could not be read (wal-get reads it and says why)

A ``wal-get`` that finds its file neither in the spool nor being written asks the live,
ready prefetcher for it (``want NAME``) and waits for the answer: the file, or a marker
written after the request was read (an older one is removed first); when the prefetcher
is not working on it for :data:`ACK_S` seconds (not started, or done but nothing to
take), or is gone, wal-get fetches it itself.  The prefetcher
has the repository open already (botocore, age keys loaded), so a history file, the
first segments, or the probe past the end of the archive cost one lookup, not a new
process's imports.

The spool is as untrusted as the repository: names are checked (segments and history
files only),
nothing is opened through a link, a segment is taken only while the prefetcher that
wrote it holds the lock (what a crashed one left is never used: the next prefetcher
removes it), and only when its inode, size and times are still those recorded when it
was written — else its sha256 is compared, and a mismatch is reported as damage,
the file removed, and the segment fetched from the repository.  Taking is a rename
(a copy across file systems).

Built-in modules only (hashlib on a mismatch): this is the whole of a spool hit in
Python.  Most hits never start Python: the restore_command tries :func:`shell_take`
first, the same rules in ``/bin/sh`` (which runs restore_command anyway), one ``find``
and one ``mv`` -- the cost of ``cp``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs each wal-get ~10 ms
if TYPE_CHECKING:
    from collections.abc import Iterator

LOCK = "lock"
READY = "ready"  # made by the live prefetcher once its repository is open: ask it
JOURNAL = "journal"
KEEP = "keep-journal"
SUM = ".sum"
NOTE = ".note"  # what the fetch of NAME is worth telling (read from another repository)
MISSING = ".missing"  # the prefetcher's answer to a request: not archived
FAILED = ".failed"  # the prefetcher's answer to a request: could not be read (wal-get says why)
TMP = ".tmp-"
CLOCK_S = 2.0  # at most this long for the file system's clock to pass a segment's ctime
ACK_S = 1.0  # a request the prefetcher is not working on for this long: wal-get fetches it
JOURNAL_LIMIT = 64 << 20  # a longer journal is not read (untrusted)
_HEX = frozenset("0123456789ABCDEF")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_REG = 0o100000  # stat.S_IFREG, without importing stat


def is_segment(name: str) -> bool:
    """A plain 24-hex-digit segment name."""
    return len(name) == 24 and _HEX.issuperset(name)


def is_spooled(name: str) -> bool:
    """A name the spool may hold: a plain segment or a timeline history file
    (``.partial`` and ``.backup`` files are always read by wal-get itself)."""
    return is_segment(name) or (
        len(name) == 16 and name.endswith(".history") and _HEX.issuperset(name[:8])
    )


def answer(dfd: int, name: str) -> str | None:
    """The prefetcher's answer to ``want NAME`` when it is not the file itself:
    ``"missing"`` (not archived) or ``"failed"`` (wal-get reads it and says why),
    the marker removed once read; None when there is none (yet)."""
    for kind, suffix in (("missing", MISSING), ("failed", FAILED)):
        raw = _read_small(dfd, name + suffix, 0)
        if raw is not None:
            _unlink(dfd, name + suffix)
            return kind
    return None


def ready(dfd: int) -> bool:
    """Has the prefetcher opened its repository (so that it answers requests)?"""
    return _read_small(dfd, READY, 32) is not None


def shell_take(path: str, find: str, mv: str) -> str:
    """The restore_command's fast path in ``sh``: :func:`take`'s rules without starting
    Python, for a file the live prefetcher holds.  It is taken (``mv``; ``"got NAME
    spool 0"`` in the journal) and the shell exits 0 only when all of these hold:

    * ``ready`` names a pid (digits only) that is alive: the prefetcher that wrote the
      spool still runs (the kernel's lock is what :func:`take` asks; a crash's
      ``ready`` is removed by the next prefetcher before it tidies);
    * ``NAME.sum`` was recorded (its size and inode digits only) and no ``NAME.note``
      waits to be printed;
    * ``find`` sees NAME as a regular file (not a link), one link, of the recorded
      inode and size, whose inode has not changed after the sum was written (ctime not
      newer than the sum's mtime: a write, chmod or rename since the check shows).

    Anything else -- a miss, a damaged file, a file being written, an error -- goes on
    to the Python command that follows, which reads, compares the sha256, asks the
    prefetcher or fetches.  ``path`` is quoted and ``%`` escaped for postgresql.conf;
    ``%f`` and ``%p`` stay live.  ``find`` and ``mv`` are absolute paths.
    """
    import shlex

    def q(word: str) -> str:
        return shlex.quote(word).replace("%", "%%")

    d, f, fsum, fnote = '"$d"', '"$d/%f"', f'"$d/%f{SUM}"', f'"$d/%f{NOTE}"'
    checks = " && ".join([
        f'read -r p <"$d/{READY}"',
        "case \"$p\" in ''|*[!0-9]*) false;; esac",
        'kill -0 "$p"',
        f"read -r h s i m c <{fsum}",
        "case \"$s\" in ''|*[!0-9]*) false;; esac",  # find reads -N as "less than N"
        "case \"$i\" in ''|*[!0-9]*) false;; esac",
        f"[ ! -e {fnote} ]",
        f'[ -n "$({q(find)} {d} -maxdepth 1 -name %f -type f -links 1 -inum "$i"'
        f' -size "${{s}}c" ! -cnewer {fsum})" ]',
        f"{q(mv)} -f {f} %p",
    ])  # fmt: skip
    taken = f'{{ echo "got %f spool 0" >>"$d/{JOURNAL}"; exit 0; }}'
    return f"d={q(path)}; {{ {checks} && {taken}; }} 2>/dev/null; "


def clear_answer(dfd: int, name: str) -> None:
    """Remove an earlier answer's markers: only one written after this request counts."""
    _unlink(dfd, name + MISSING)
    _unlink(dfd, name + FAILED)


def open_spool(path: str, *, make: bool = False) -> int | None:
    """A descriptor of the spool folder (never through a link); with ``make``, the
    folder is made (0700) when missing; None when it cannot be had."""
    try:
        return os.open(path, _DIR)
    except FileNotFoundError:
        if not make:
            return None
    except OSError:
        return None
    try:
        os.mkdir(path, 0o700)
        return os.open(path, _DIR)
    except OSError:
        return None


def holder(dfd: int) -> int | None:
    """The pid of the process holding the spool's lock (from the kernel), or None."""
    import fcntl
    import struct

    try:
        fd = os.open(LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_mode & 0o170000 != _REG:
            return None
        query = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0)
        kind, _w, _s, _l, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, query))
    except OSError:
        return None
    finally:
        os.close(fd)
    return pid if kind != fcntl.F_UNLCK and pid > 0 else None


def note(dfd: int, line: str) -> None:
    """Append one line to the journal (best effort: the journal is only a record)."""
    try:
        fd = os.open(
            JOURNAL,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dfd,
        )
    except OSError:
        return
    try:
        os.write(fd, line.encode() + b"\n")
    except OSError:
        pass
    finally:
        os.close(fd)


def sum_line(digest: str, st: os.stat_result) -> bytes:
    return f"{digest} {st.st_size} {st.st_ino} {st.st_mtime_ns} {st.st_ctime_ns}\n".encode()


def write_sum(dfd: int, name: str, digest: str, fd: int) -> None:
    """Record the sum of segment ``name`` (``fd`` open on it, complete) so that any
    later change to the segment shows in its times.

    A change made within the same tick of the file system's clock as the segment's own
    last change could keep its times (and a change made in the tick the sum is written
    is not newer than the sum): so the file system's clock is let pass the segment's
    ctime first (at most :data:`CLOCK_S`; a tick is a few ms), the segment is checked
    unchanged, and the sum's mtime is set to that ctime, the shell path's ``! -cnewer``
    reference (:func:`shell_take`).  OSError when the clock does not move or the segment
    changed meanwhile: no sum, so the segment is never taken unchecked."""
    import time

    st = os.fstat(fd)
    tmp = TMP + name + SUM
    sfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o600, dir_fd=dfd)  # fmt: skip
    try:
        os.write(sfd, sum_line(digest, st))
        deadline = time.monotonic() + CLOCK_S
        while os.fstat(sfd).st_mtime_ns <= st.st_ctime_ns:
            if time.monotonic() > deadline:
                raise OSError(f"the file system's clock did not pass {name}'s change time")
            time.sleep(0.0005)
            os.utime(sfd)
        now = os.fstat(fd)
        if (now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (
            st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
        ):  # fmt: skip
            raise OSError(f"{name} changed while its sum was written")
        os.utime(sfd, ns=(st.st_ctime_ns, st.st_ctime_ns))
    except BaseException:
        os.close(sfd)
        _unlink(dfd, tmp)
        raise
    os.close(sfd)
    os.rename(tmp, name + SUM, src_dir_fd=dfd, dst_dir_fd=dfd)


def _read_small(dfd: int, name: str, limit: int = 512) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != _REG or st.st_nlink != 1:  # no link to another file
            return None
        data = os.read(fd, limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _parse_sum(raw: bytes | None) -> tuple[str, int, int, int, int] | None:
    if raw is None:
        return None
    parts = raw.decode("ascii", "replace").split()
    if len(parts) != 5 or len(parts[0]) != 64 or not all(p.isdigit() for p in parts[1:]):
        return None
    return parts[0], int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4])


def sha256_of(fd: int) -> str:
    import hashlib

    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _unlink(dfd: int, name: str) -> bool:
    """Remove ``name`` (a link itself, never what it points to); False if it failed.
    (No contextlib here: a spool hit imports nothing it can do without.)"""
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        return False
    return True


def discard(dfd: int, name: str) -> None:
    _unlink(dfd, name + SUM)
    _unlink(dfd, name + NOTE)
    _unlink(dfd, name)


def notes(dfd: int, name: str) -> list[str]:
    """The notes of the fetch of ``name`` (printable text only), removed once read."""
    raw = _read_small(dfd, name + NOTE, 4096)
    if raw is None:
        return []
    _unlink(dfd, name + NOTE)
    text = raw.decode("utf-8", "replace")
    return [ln for ln in text.splitlines() if ln.isprintable() and ln.startswith(name + ": ")]


def take(dfd: int, name: str, dest: str) -> str:
    """Move segment ``name`` from the spool to ``dest``: ``"spool"`` when done,
    ``"miss"`` when the spool does not hold it (or no live prefetcher wrote it),
    ``"damaged"`` when it was there but not what was written (it is removed)."""
    if not is_spooled(name) or holder(dfd) is None:
        return "miss"
    recorded = _parse_sum(_read_small(dfd, name + SUM))
    if recorded is None:
        return "miss"
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return "miss"
    try:
        st = os.fstat(fd)
        digest, size, ino, mtime, ctime = recorded
        if st.st_mode & 0o170000 != _REG or st.st_nlink != 1 or st.st_size != size:
            discard(dfd, name)
            return "damaged"
        changed = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns) != (ino, mtime, ctime)
        if changed and sha256_of(fd) != digest:  # touched since it was written: read it all
            discard(dfd, name)
            return "damaged"
        return _move(dfd, name, fd, st, dest)
    finally:
        os.close(fd)


def _move(dfd: int, name: str, fd: int, st: os.stat_result, dest: str) -> str:
    """Rename the open, checked file ``name`` to ``dest``; across file systems, copy
    it from the descriptor (what was checked is what is copied)."""
    try:
        os.rename(name, dest, src_dir_fd=dfd)
    except OSError as exc:
        import errno

        if exc.errno != errno.EXDEV:
            return "miss"
        return _copy(dfd, name, fd, st, dest)
    try:
        after = os.lstat(dest)
    except OSError:
        return "miss"
    if (after.st_ino, after.st_dev) != (st.st_ino, st.st_dev):  # swapped under us
        os.unlink(dest)
        return "miss"
    _unlink(dfd, name + SUM)
    return "spool"


def _copy(dfd: int, name: str, fd: int, st: os.stat_result, dest: str) -> str:
    tmp = f"{dest}.pgsafe-{os.getpid()}"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        left = st.st_size
        while left > 0:
            n = os.sendfile(out, fd, None, min(left, 1 << 24))
            if n <= 0:
                break
            left -= n
        if left:
            raise OSError("short copy")
    except OSError:
        os.close(out)
        os.unlink(tmp)
        return "miss"
    os.close(out)
    os.replace(tmp, dest)
    _unlink(dfd, name + SUM)
    _unlink(dfd, name)
    return "spool"


def in_flight(dfd: int, name: str) -> bool:
    """Is the live prefetcher writing ``name`` now?"""
    try:
        os.stat(TMP + name, dir_fd=dfd, follow_symlinks=False)
        return True
    except OSError:
        return False


def entries(dfd: int) -> Iterator[str]:
    """Every name in the spool but the lock and the journal's own files."""
    for n in os.listdir(dfd):
        if n not in (LOCK, JOURNAL, KEEP, READY):
            yield n


class Stats:
    """What the journal says: segments fetched from the repository, taken from the
    spool, found damaged in the spool, asked for but not archived; seconds wal-get
    spent answering (from its start to its answer)."""

    __slots__ = ("damaged", "fetched", "from_spool", "missing", "wait_s")

    def __init__(self) -> None:
        self.fetched = self.from_spool = self.damaged = self.missing = 0
        self.wait_s = 0.0


def parse_journal(text: str) -> Stats:
    """:class:`Stats` of a journal's text (untrusted: malformed lines are skipped)."""
    out = Stats()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[0] != "got" or not is_segment(parts[1]):
            continue  # history files are not counted
        try:
            seconds = float(parts[3])
        except ValueError:
            continue
        if not 0 <= seconds < 1e6:
            continue
        if parts[2] == "spool":
            out.from_spool += 1
        elif parts[2] == "fetched":
            out.fetched += 1
        elif parts[2] == "damaged":
            out.damaged += 1
            continue  # the fetch that follows has its own line
        elif parts[2] == "missing":
            out.missing += 1
        else:
            continue
        out.wait_s += seconds
    return out


def read_stats(path: str) -> Stats | None:
    """The journal of the spool at ``path`` summed up; None when there is none."""
    dfd = open_spool(path)
    if dfd is None:
        return None
    try:
        raw = _read_small(dfd, JOURNAL, JOURNAL_LIMIT)
    finally:
        os.close(dfd)
    return None if raw is None else parse_journal(raw.decode("ascii", "replace"))
