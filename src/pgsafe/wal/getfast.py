"""``wal-get``'s fast path: one WAL file from one local, unencrypted zstd repository.

The counterpart of ``wal-push``'s :mod:`pgsafe.wal.fastpush`, with the same rules
imported, never copied: where the settings come from and when no config file takes
part (:func:`pgsafe.wal.fastpush.settings`), the marker's rules
(:mod:`pgsafe.repo.marker`), the keys and the order of suffixes
(:mod:`pgsafe.wal.layout`), the walk that follows no link
(:mod:`pgsafe.repo.storage.nofollow`).  The object is read whole and decoded by
zstd's C backend, strictly: every frame complete (its checksum checked by zstd), no
trailing bytes — else this path declines and the full path (:mod:`pgsafe.wal.get`)
reads it again and says what is wrong.

It handles only a plain segment or history file name, in a repository whose marker
says zstd (or no compression) without encryption, with no age key in play; everything
else returns None with nothing written, and :func:`pgsafe.wal.get.get` does the work.
With the prefetch spool (:mod:`pgsafe.wal.spool`) most calls never get here.
"""

from __future__ import annotations

import os

from pgsafe.repo import marker
from pgsafe.repo.storage import nofollow
from pgsafe.wal import fastpush, layout

TYPE_CHECKING = False  # typing costs each wal-get ~10 ms
if TYPE_CHECKING:
    from collections.abc import Mapping

_HEX = frozenset("0123456789ABCDEF")
_READ_LIMIT = (1 << 30) + (1 << 20)  # a segment is at most 1 GiB (rules.checked_record)


def _folder(server: str, name: str) -> list[str] | None:
    """The key's folders for a plain segment or history file name, else None."""
    if len(name) == 24 and _HEX.issuperset(name):
        return [server, "wal", name[:16]]
    if len(name) == 16 and name.endswith(".history") and _HEX.issuperset(name[:8]):
        return [server, "wal", "history"]
    return None


def _suffix(doc: dict[str, object] | None) -> str | None:
    """The WAL suffix of a marker this path reads (zstd or none, unencrypted), or None."""
    if doc is None or marker.marker_problem(doc) is not None or marker.is_newer(doc):
        return None
    if marker.keys_possible(doc):
        return None
    codec = doc.get("codec") or {}
    if not isinstance(codec, dict) or codec.get("encryption"):
        return None
    if marker.is_plain_zstd(doc):
        return layout.SUFFIX
    return "" if codec.get("compression") == "none" else None


def _read(dfd: int, base: str) -> bytes | None:
    """The whole regular file ``base`` (never through a link); None when missing."""
    try:
        fd = nofollow.open_file(dfd, base, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != 0o100000 or st.st_size > _READ_LIMIT:
            raise OSError("not a regular file of a WAL file's size")
        chunks = []
        while chunk := os.read(fd, 1 << 24):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _exists(dfd: int, base: str) -> bool:
    try:
        os.stat(base, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def decode_zstd(raw: bytes) -> bytes | None:
    """The plaintext of one or more complete zstd frames; None on anything else
    (truncated, damaged, trailing bytes, skippable frames): the full path decides."""
    zstd = fastpush.zstd_backend()
    out: list[bytes] = []
    data = raw
    try:
        while data:
            dobj = zstd.ZstdDecompressor().decompressobj()
            out.append(dobj.decompress(data))
            if not dobj.eof:
                return None
            data = dobj.unused_data
    except zstd.ZstdError:
        return None
    return b"".join(out)


def fetch(flags: Mapping[str, object], name: str, dest: str) -> bool | None:
    """Write the archived ``name`` to ``dest``: True, False when it is not archived,
    None when this case is not one for the fast path (nothing was written)."""
    where = fastpush.settings(flags)
    folders = _folder(where[1], name) if where is not None else None
    if where is None or folders is None:
        return None
    root = where[0]
    suffix = _suffix(fastpush._read_json(root, marker.MARKER))
    if suffix is None:
        return None
    try:
        dfd = nofollow.walk(root, folders)
    except FileNotFoundError:
        return False  # no such folder: not archived (as the full path lists it)
    except OSError:
        return None
    try:
        for sfx in layout.all_suffixes(suffix):
            if sfx not in (layout.SUFFIX, ""):
                if _exists(dfd, name + sfx):
                    return None  # another codec's copy: the full path reads it
                continue
            raw = _read(dfd, name + sfx)
            if raw is None:
                continue
            plain = decode_zstd(raw) if sfx == layout.SUFFIX else raw
            if plain is None:
                return None
            _write(dest, plain)
            return True
        return False
    except OSError:
        return None
    finally:
        os.close(dfd)


def _write(dest: str, data: bytes) -> None:
    """``dest`` made atomically: a new file beside it, fsynced, renamed."""
    tmp = f"{dest}.pgsafe-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, dest)
