"""Where archived WAL and the server record live in a repository (lean).

Keys::

    <server>/server.json                         system identifier, major, segment size
    <server>/wal/<TTTTTTTTXXXXXXXX>/<name><sfx>  segments, .partial and .backup files
    <server>/wal/history/<TLI>.history<sfx>      timeline history files
    <server>/marks/<name>.json                   named restore points (pgsafe mark)
    <server>/wal-digests/<name>.sha256           sha256 of an encrypted WAL file's plaintext

``<sfx>`` is the suffix of the repository's codec when the file was archived: ``.zst``
(the default), ``.lz4``, ``.gz`` or nothing, then ``.age`` when encrypted.  A
repository keeps one codec, so its WAL has one suffix; readers still accept any.
"""

from __future__ import annotations

TYPE_CHECKING = False  # wal-push's fast path imports this module: no typing, no names
if TYPE_CHECKING:
    from pgsafe.wal.names import WalName

SUFFIX = ".zst"  # the default codec's suffix (and that of repositories made before codecs)
AGE_SUFFIX = ".age"
COMPRESSION_SUFFIXES = (".zst", ".lz4", ".gz", "")


def all_suffixes(preferred: str = SUFFIX) -> list[str]:
    """Every suffix a stored WAL file may carry, ``preferred`` first."""
    out = [preferred]
    for enc in ("", AGE_SUFFIX):
        for comp in COMPRESSION_SUFFIXES:
            if comp + enc not in out:
                out.append(comp + enc)
    return out


def server_record_key(server: str) -> str:
    return f"{server}/server.json"


def wal_prefix(server: str) -> str:
    return f"{server}/wal"


def wal_folder(server: str, wal: WalName) -> str:
    """The folder (key prefix) holding ``wal`` whatever its suffix."""
    if wal.kind == "history":
        return f"{server}/wal/history"
    assert wal.segment is not None
    return f"{server}/wal/{wal.segment[:16]}"


def wal_key(server: str, wal: WalName, suffix: str = SUFFIX) -> str:
    return f"{wal_folder(server, wal)}/{wal.name}{suffix}"


def segment_key(server: str, segment: str, suffix: str = SUFFIX) -> str:
    """:func:`wal_key` of a plain 24-character segment name (no parsing)."""
    return f"{server}/wal/{segment[:16]}/{segment}{suffix}"


def strip_suffix(base: str) -> str:
    """``000000010000000000000003.lz4.age`` → ``000000010000000000000003``."""
    if base.endswith(AGE_SUFFIX):
        base = base[: -len(AGE_SUFFIX)]
    for comp in COMPRESSION_SUFFIXES:
        if comp and base.endswith(comp):
            return base[: -len(comp)]
    return base


def name_of_key(key: str) -> str | None:
    """The archive file name of a WAL key (any codec suffix), or None for anything else."""
    from pgsafe.wal.names import parse

    name = strip_suffix(key.rsplit("/", 1)[-1])
    return name if parse(name) is not None else None


def digest_key(server: str, name: str) -> str:
    """Where the sha256 of WAL file ``name``'s plaintext is recorded (written before an
    encrypted segment, removed with it)."""
    return f"{server}/wal-digests/{name}.sha256"


def mark_key(server: str, name: str) -> str:
    return f"{server}/marks/{name}.json"
