"""``wal-push``'s fast path: a new segment into one local, plain zstd repository.

PostgreSQL starts ``archive_command`` once per 16 MiB segment, so a push is mostly
fixed costs: on the 2-core machine of the benchmarks, importing ``dataclasses``,
``typing``, ``pathlib``, ``re`` or ``json`` costs 8-25 ms each, ``import zstandard``
20 ms (its ``__init__`` imports ``platform``), reading the segment into a new buffer
15-20 ms — together more than compressing it.  This module does the common case with
the interpreter's built-in modules only: zstd's C backend loaded directly, the two
small JSON documents read by the C scanner of ``json``, the segment compressed straight
from a read-only ``mmap`` of it.

It handles only (everything else returns ``None`` with nothing changed, and
:func:`pgsafe.wal.push.push` does the work with its full checks and messages):

* one local repository (``--repo`` or ``PGSAFE_REPO``) and no config file in play;
* a marker of a known format: zstd, not encrypted, no age recipients, and no
  ``PGSAFE_AGE_*`` variable set;
* a plain segment name (not ``.partial``, ``.backup`` or ``.history``) whose header
  matches the server record already stored (its timeline, system identifier, size);
* not running as root in a repository another user owns (the posix storage then
  hands new files to that owner), ``<server>/wal`` already made (the segment's own
  folder is made here when missing), the name not taken yet (a retry, or different
  content under that name, goes to the full path, which compares).

What it stores is what the full path stores: one zstd frame at :data:`WAL_LEVEL` with
a content checksum, written under a ``.tmp-`` name (mode 0600), fsynced, hard-linked
to ``<server>/wal/<TTTTTTTTXXXXXXXX>/<name>.zst`` (never replacing anything) and the
folder fsynced (and its parent, when the folder is new) before it returns; PostgreSQL
deletes the segment once we exit 0.  Inside the repository nothing is opened through a
symbolic link: the marker, the server record and the folders are walked from the
root's descriptor with ``O_NOFOLLOW`` (:mod:`pgsafe.repo.storage.nofollow`), and a link
on the way sends the segment to the full path, which refuses it by name.
"""

from __future__ import annotations

import os
import sys

from pgsafe.wal import layout

TYPE_CHECKING = False  # typing itself costs ~15 ms to import here
if TYPE_CHECKING:
    import mmap
    from collections.abc import Mapping
    from types import ModuleType

WAL_LEVEL = 1  # zstd level for WAL: cheap, and WAL compresses well at any level
MARKER = "pgsafe-repo.json"  # pgsafe.repo.repository.MARKER
FORMAT_VERSION = 1  # pgsafe.repo.catalog.FORMAT_VERSION (a test holds them equal)
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_HEX = frozenset("0123456789ABCDEF")
_SERVER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_CONFIG_FILES = ("pgsafe.toml", "~/.config/pgsafe/pgsafe.toml", "/etc/pgsafe/pgsafe.toml")


def _server_ok(name: str) -> bool:
    """As repository.validate_server (``^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$``)."""
    return 0 < len(name) <= 63 and name[0] not in "_.-" and all(c in _SERVER_CHARS for c in name)


def settings(flags: Mapping[str, object]) -> tuple[str, str] | None:
    """(repository folder, server) as load_settings would give them, when no config file
    takes part and the repository is one local folder; else None."""
    if flags.get("config") or os.environ.get("PGSAFE_CONFIG"):
        return None
    for candidate in _CONFIG_FILES:
        if os.path.isfile(os.path.expanduser(candidate)):
            return None
    repo = flags.get("repo") or os.environ.get("PGSAFE_REPO")
    server = flags.get("server") or os.environ.get("PGSAFE_SERVER") or "main"
    if not isinstance(repo, str) or not isinstance(server, str) or "://" in repo:
        return None
    if not _server_ok(server):
        return None
    root = os.path.expanduser(repo)
    return (root if os.path.isabs(root) else os.path.join(os.getcwd(), root)), server


class _JsonContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder`` (defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__  # fmt: skip


def json_object(raw: bytes) -> dict[str, object] | None:
    """``json.loads(raw)`` for a UTF-8 JSON object, by json's own C scanner (importing
    ``json`` imports ``re``); None when it is anything else or the scanner is missing."""
    try:
        from _json import make_scanner
    except ImportError:  # not CPython: the json module then
        import json

        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    try:
        text = raw.decode("utf-8").strip(" \t\n\r")
        doc, end = make_scanner(_JsonContext())(text, 0)  # type: ignore[arg-type]
    except (ValueError, StopIteration):
        return None
    return doc if end == len(text) and isinstance(doc, dict) else None


def _read_json(root: str, key: str) -> dict[str, object] | None:
    """The JSON object stored under ``key``, read without following a link; None when
    it is missing, a link, not a regular file, or not a JSON object."""
    from pgsafe.repo.storage import nofollow

    *above, name = key.split("/")
    try:
        dfd = nofollow.walk(root, above)
    except OSError:
        return None
    try:
        fd = nofollow.open_file(dfd, name, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(fd, "rb", closefd=False) as f:
            return json_object(f.read())
    except OSError:
        return None
    finally:
        os.close(fd)


def zstd_backend() -> ModuleType:
    """zstandard's C extension, loaded without the package's ``__init__`` (which imports
    ``platform``, ``typing`` and ``re``); ``import zstandard`` when that is not possible.
    The module is registered as ``zstandard.backend_c``, so a later ``import zstandard``
    reuses it."""
    loaded = sys.modules.get("zstandard")
    if loaded is not None:
        return loaded
    policy = os.environ.get("PYTHON_ZSTANDARD_IMPORT_POLICY", "default").strip()
    if sys.implementation.name == "cpython" and policy in ("default", "cext"):
        mod = sys.modules.get("zstandard.backend_c")
        if mod is None:
            try:
                from importlib.machinery import PathFinder

                pkg = PathFinder.find_spec("zstandard")
                places = list(pkg.submodule_search_locations or []) if pkg else []
                spec = PathFinder.find_spec("zstandard.backend_c", places) if places else None
                if spec is not None and spec.loader is not None:
                    mod = spec.loader.create_module(spec)
                    if mod is not None:
                        spec.loader.exec_module(mod)
                        sys.modules["zstandard.backend_c"] = mod
            except (ImportError, OSError):
                mod = None
        if mod is not None and hasattr(mod, "ZstdCompressionParameters"):
            return mod
    import zstandard

    return zstandard


def compress(zstd: ModuleType, data: mmap.mmap | bytes) -> bytes:
    """One zstd frame at :data:`WAL_LEVEL` with a content checksum, by this thread.

    No worker threads: in a fresh process they cost more than they save on a 16 MiB
    segment (zstd copies the input into per-job buffers that must first be faulted in):
    measured on 2 cores, 37 ms wall / 35 ms CPU single-threaded against 51 ms / 58 ms
    with 2 workers and 4 MiB jobs (medians of 7 fresh processes, a real segment).
    """
    params = zstd.ZstdCompressionParameters.from_level(WAL_LEVEL, write_checksum=True)
    out: bytes = zstd.ZstdCompressor(compression_params=params).compress(data)
    return out


def _header_ok(data: mmap.mmap, name: str, record: dict[str, object], size: int) -> bool:
    from pgsafe.wal.header import read_long_header

    try:
        h = read_long_header(data)
    except ValueError:
        return False
    segsize = record.get("wal_segment_size", DEFAULT_SEGMENT_SIZE)
    sysid = record.get("system_identifier")
    return (
        h.timeline == int(name[:8], 16)
        and isinstance(sysid, (str, int))
        and str(sysid) == str(h.system_identifier)
        and type(segsize) is int
        and segsize == h.segment_size == size
    )


def _owner_uid(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def _marker_ok(doc: dict[str, object] | None) -> bool:
    if doc is None:
        return False
    fmt = doc.get("format", 0)
    codec = doc.get("codec") or {}
    if type(fmt) is not int or not 0 <= fmt <= FORMAT_VERSION or not isinstance(codec, dict):
        return False
    level = codec.get("level")
    return (
        codec.get("compression", "zstd") == "zstd"
        and not codec.get("encryption")
        and (level is None or (type(level) is int and 1 <= level <= 22))
        and not doc.get("age_recipients")
        and not any(k.startswith("PGSAFE_AGE_") for k in os.environ)
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def push(flags: Mapping[str, object], path: str) -> int | None:
    """Store the segment at ``path``; the stored size, or None when this case is not
    one for the fast path (then nothing was changed)."""
    name = os.path.basename(path)
    if len(name) != 24 or not _HEX.issuperset(name):
        return None
    where = settings(flags)
    if where is None:
        return None
    root, server = where
    if os.geteuid() == 0 and _owner_uid(root) != 0:
        return None  # the posix storage gives what it creates to the root folder's owner
    if not _marker_ok(_read_json(root, MARKER)):
        return None
    record = _read_json(root, layout.server_record_key(server))
    if record is None:
        return None
    import mmap

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size <= 0:
            return None
        populate = getattr(mmap, "MAP_POPULATE", 0)
        data = mmap.mmap(fd, size, mmap.MAP_SHARED | populate, mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    with data:
        if not _header_ok(data, name, record, size):
            return None
        out = compress(zstd_backend(), data)
    return _store(root, layout.segment_key(server, name, layout.SUFFIX), out)


def _store(root: str, key: str, data: bytes) -> int | None:
    """Atomically create ``key`` (see the module docstring), making its folder when only
    that is missing (once per 256 segments); None when more is missing, the name is
    taken, or a folder on the way is a symbolic link (the full path then refuses it by
    name) — nothing left behind but, at most, the new empty folder.  The folders are
    walked from the root's descriptor without following a link, as the posix storage
    does (:mod:`pgsafe.repo.storage.nofollow`)."""
    from pgsafe.repo.storage import nofollow

    *above, folder, base = key.split("/")
    try:
        wal_fd = nofollow.walk(root, above)  # <root>/<server>/wal: must exist
    except OSError:
        return None
    made = False
    try:
        try:
            dfd = nofollow.open_dir(wal_fd, folder)
        except FileNotFoundError:
            try:
                os.mkdir(folder, nofollow.FOLDER_MODE, dir_fd=wal_fd)
                made = True
                dfd = nofollow.open_dir(wal_fd, folder)
            except OSError:
                return None
        except OSError:
            return None
        try:
            return _store_in(dfd, wal_fd if made else None, root, key, base, data)
        finally:
            os.close(dfd)
    finally:
        os.close(wal_fd)


def _store_in(
    dfd: int, parent_fd: int | None, root: str, key: str, base: str, data: bytes
) -> int | None:
    from pgsafe.repo.storage import nofollow

    tmp = f".tmp-{base}.{os.urandom(6).hex()}"
    try:
        fd = nofollow.open_file(dfd, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return None
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
    except OSError:  # taken, or full: the full path says which (and compares)
        return None
    finally:
        try:  # noqa: SIM105  (contextlib is one more import)
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    # visible now: from here a failure is an error (exit 1), not a retry elsewhere
    try:
        os.fsync(dfd)
        if parent_fd is not None:  # the new folder's own entry
            os.fsync(parent_fd)
    except OSError as exc:
        from pgsafe.errors import OperationFailed

        raise OperationFailed(f"cannot write {key} to repository {root}: {exc}") from None
    return len(data)
