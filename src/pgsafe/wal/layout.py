"""Where archived WAL and the server record live in a repository (lean).

Keys::

    <server>/server.json                    system identifier, major, WAL segment size
    <server>/wal/<TTTTTTTTXXXXXXXX>/<name>.zst   segments, .partial and .backup files
    <server>/wal/history/<TLI>.history.zst  timeline history files
    <server>/marks/<name>.json              named restore points (pgsafe mark)
"""

from __future__ import annotations

from pgsafe.wal.names import WalName

SUFFIX = ".zst"


def server_record_key(server: str) -> str:
    return f"{server}/server.json"


def wal_prefix(server: str) -> str:
    return f"{server}/wal"


def wal_key(server: str, wal: WalName) -> str:
    if wal.kind == "history":
        return f"{server}/wal/history/{wal.name}{SUFFIX}"
    assert wal.segment is not None
    return f"{server}/wal/{wal.segment[:16]}/{wal.name}{SUFFIX}"


def name_of_key(key: str) -> str | None:
    """The archive file name of a WAL key, or None for anything else."""
    base = key.rsplit("/", 1)[-1]
    return base[: -len(SUFFIX)] if base.endswith(SUFFIX) else None


def mark_key(server: str, name: str) -> str:
    return f"{server}/marks/{name}.json"
