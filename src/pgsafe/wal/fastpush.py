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

* one local repository (``--repo`` or ``PGSAFE_REPO``) and no config file in play
  (:mod:`pgsafe.config.discovery`, as ``load_settings`` finds them);
* a marker the full path accepts (:func:`pgsafe.repo.marker.marker_problem`) of a
  known format, plain zstd, and no age key in play (no recipients, no ``PGSAFE_AGE_*``
  variable set);
* a plain segment name (not ``.partial``, ``.backup`` or ``.history``) whose header
  passes the rules of :mod:`pgsafe.wal.rules` against the server record already stored
  (itself checked by the same schema): its timeline, system identifier, size;
* not running as root in a repository another user owns (the posix storage then
  hands new files to that owner), ``<server>/wal`` already made (the segment's own
  folder is made here when missing), the name not taken yet (a retry, or different
  content under that name, goes to the full path, which compares: the "same content:
  exit 0, other content: refused" rule has one implementation).

Every rule is imported, never copied: the server name
(:func:`pgsafe.repo.marker.server_problem`), the key
(:func:`pgsafe.wal.layout.segment_key`), the walk that follows no link
(:mod:`pgsafe.repo.storage.nofollow`) and the write (:mod:`pgsafe.repo.storage.atomic`:
a ``.tmp-`` name, mode 0600, fsynced, hard-linked to ``<name>.zst`` — never replacing
anything — and the folder fsynced, a new folder's entry in its parent too) are those of
the full path.  What it stores is what the full path stores: one zstd frame at
:data:`WAL_LEVEL` with a content checksum.  PostgreSQL deletes the segment once we
exit 0.
"""

from __future__ import annotations

import os
import sys

from pgsafe.config import discovery
from pgsafe.errors import BadInput, OperationFailed
from pgsafe.repo import marker
from pgsafe.repo.marker import FORMAT_VERSION as FORMAT_VERSION
from pgsafe.repo.marker import MARKER as MARKER
from pgsafe.repo.storage import atomic, nofollow
from pgsafe.wal import layout, rules
from pgsafe.wal.rules import DEFAULT_SEGMENT_SIZE as DEFAULT_SEGMENT_SIZE
from pgsafe.wal.rules import WAL_LEVEL as WAL_LEVEL

TYPE_CHECKING = False  # typing itself costs ~15 ms to import here
if TYPE_CHECKING:
    import mmap
    from collections.abc import Mapping
    from types import ModuleType

_HEX = frozenset("0123456789ABCDEF")


def _server_ok(name: str) -> bool:
    """:func:`pgsafe.repo.marker.server_problem` says nothing against ``name``."""
    return marker.server_problem(name) is None


def settings(flags: Mapping[str, object]) -> tuple[str, str] | None:
    """(repository folder, server) as load_settings would give them, when no config file
    takes part and the repository is one local folder; else None."""
    try:
        if discovery.config_file(_str(flags.get("config"))) is not None:
            return None
    except BadInput:  # a config named but missing: the full path says so
        return None
    if os.environ.get("PGSAFE_ENCRYPTION", "").strip().lower() not in ("", "none", "off", "no"):
        return None  # encryption asked for: the full path holds the marker to it
    repo = discovery.flag_or_env(flags, "repo")
    server = discovery.flag_or_env(flags, "server") or discovery.DEFAULT_SERVER
    if not isinstance(repo, str) or not repo or not isinstance(server, str) or "://" in repo:
        return None
    if not _server_ok(server):
        return None
    root = os.path.expanduser(repo)
    return (root if os.path.isabs(root) else os.path.join(os.getcwd(), root)), server


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


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
    it is missing, a link, not a regular file, larger than a record may be
    (:data:`pgsafe.repo.marker.RECORD_LIMIT`, as the full path reads it), or not a
    JSON object."""
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
            raw = f.read(marker.RECORD_LIMIT + 1)
        return json_object(raw) if len(raw) <= marker.RECORD_LIMIT else None
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


def _header_ok(data: mmap.mmap, name: str, record: dict[str, object], root: str,
               server: str) -> bool:  # fmt: skip
    """The segment passes :mod:`pgsafe.wal.rules` against the stored server record."""
    from pgsafe.wal.header import read_long_header

    try:
        sysid, segsize, _major = rules.checked_record(record)
        h = read_long_header(data)
        rules.check_timeline(name, int(name[:8], 16), h)
        rules.check_system(str(h.system_identifier), sysid, server, root)
        rules.check_size(name, h, segsize, server, len(data))
    except (ValueError, KeyError, OperationFailed):
        return False
    return True


def _marker_ok(doc: dict[str, object] | None) -> bool:
    """A marker the full path accepts, of a known format, plain zstd, no keys."""
    return (
        doc is not None
        and marker.marker_problem(doc) is None
        and not marker.is_newer(doc)
        and marker.is_plain_zstd(doc)
        and not marker.keys_possible(doc)
    )


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
    if atomic.inherited_owner(root) is not None:
        return None  # as root in another user's repository: the storage hands files over
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
        if not _header_ok(data, name, record, root, server):
            return None
        out = compress(zstd_backend(), data)
    return _store(root, layout.segment_key(server, name, layout.SUFFIX), out)


def _store(root: str, key: str, data: bytes) -> int | None:
    """Create ``key`` by the write rule of :mod:`pgsafe.repo.storage.atomic`, making its
    folder when only that is missing (once per 256 segments); None when more is
    missing, the name is taken, or a folder on the way is a symbolic link (the full
    path then refuses it by name) — nothing left behind but, at most, the new empty
    folder.  The folders are walked from the root's descriptor without following a
    link, as the posix storage walks them."""
    *above, folder, base = key.split("/")
    try:
        wal_fd = nofollow.walk(root, above)  # <root>/<server>/wal: must exist
    except OSError:
        return None
    try:
        dfd = nofollow.open_dir(wal_fd, folder, _claim_folder)
    except OSError:
        return None
    finally:
        os.close(wal_fd)
    try:
        return atomic.write_new(dfd, base, lambda fd: atomic.write_all(fd, data))
    except atomic.NotSynced as exc:  # visible now: an error (exit 1), not a retry elsewhere
        raise OperationFailed(f"cannot write {key} to repository {root}: {exc}") from None
    except OSError:  # taken, or full: the full path says which (and compares)
        return None
    finally:
        os.close(dfd)


def _claim_folder(fd: int) -> None:
    """A folder made here: its mode, as the posix storage sets it (the owner is ours:
    see :func:`push`)."""
    atomic.claim(fd, atomic.FOLDER_MODE, None)
