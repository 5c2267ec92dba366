"""``wal-get``: copy one archived WAL file to where PostgreSQL asks (lean).

A file not in the archive is an ordinary answer (PostgreSQL probes past the end of the
archive and for history files of future timelines): :func:`get` returns False.
"""

from __future__ import annotations

import os
import secrets

import zstandard

from pgsafe.errors import BadInput, NotFound, OperationFailed
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout, names


def get(repo: Repository, name: str, dest: str) -> bool:
    """Write the archived ``name`` to ``dest`` (atomically); False when it is not archived."""
    wal = names.parse(name)
    if wal is None:
        raise BadInput(f"{name!r} is not a WAL file name", hint="restore_command passes %f %p")
    key = layout.wal_key(repo.server, wal)
    try:
        src = repo.storage.open(key)
    except NotFound:
        return False
    folder = os.path.dirname(os.path.abspath(dest))
    tmp = os.path.join(folder, f".pgsafe-{os.path.basename(dest)}.{secrets.token_hex(4)}")
    try:
        with src, open(tmp, "wb") as out:
            reader = zstandard.ZstdDecompressor().stream_reader(src)
            while chunk := reader.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, dest)
    except (OSError, zstandard.ZstdError) as exc:
        raise OperationFailed(f"cannot restore {name} from {repo.storage.url}: {exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True
