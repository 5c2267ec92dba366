"""The repository's record of the PostgreSQL server it archives (lean).

It pins the system identifier: WAL from another cluster is refused by ``wal-push``.
The first of ``archive enable``, ``backup`` or ``wal-push`` to run writes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from pgsafe.errors import ObjectExists, OperationFailed, VerificationFailed
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import RECORD_LIMIT, read_all
from pgsafe.wal.layout import server_record_key
from pgsafe.wal.names import DEFAULT_SEGMENT_SIZE


@dataclass(frozen=True)
class ServerRecord:
    system_identifier: str
    wal_segment_size: int = DEFAULT_SEGMENT_SIZE
    pg_major: int | None = None


def _checked(doc: object) -> ServerRecord:
    """The record a repository holds, checked: it is untrusted input like the catalog.

    The segment size feeds all WAL arithmetic, so it must be one PostgreSQL can have
    (a power of two from 1 MiB to 1 GiB); the system identifier is a decimal number.
    """
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    sysid = doc["system_identifier"]
    if isinstance(sysid, bool) or not isinstance(sysid, (str, int)):
        raise ValueError("system_identifier")
    sysid = str(sysid)
    if not sysid.isascii() or not sysid.isdigit() or len(sysid) > 20:
        raise ValueError("system_identifier")
    size = doc.get("wal_segment_size", DEFAULT_SEGMENT_SIZE)
    if type(size) is not int or size < 1 << 20 or size > 1 << 30 or size & (size - 1):
        raise ValueError("wal_segment_size")
    major = doc.get("pg_major")
    if major is not None and (type(major) is not int or not 9 <= major <= 99):
        raise ValueError("pg_major")
    return ServerRecord(sysid, size, major or None)


def load(repo: Repository) -> ServerRecord | None:
    key = server_record_key(repo.server)
    if repo.storage.stat(key) is None:
        return None
    try:
        return _checked(json.loads(read_all(repo.storage, key, RECORD_LIMIT)))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise VerificationFailed(
            f"the server record {key} in {repo.storage.url} is damaged ({exc})",
            hint="restore it from a copy, or remove it to let the next backup write it again",
        ) from None


def ensure(repo: Repository, record: ServerRecord) -> ServerRecord:
    """The stored record, writing ``record`` when there is none yet.

    Raises :class:`OperationFailed` when the stored one names another system.
    """
    current = load(repo)
    if current is None:
        body = json.dumps(asdict(record), indent=2).encode() + b"\n"
        try:
            repo.storage.put(server_record_key(repo.server), [body])
            return record
        except ObjectExists:  # another process won the race
            current = load(repo)
            assert current is not None
    if current.system_identifier != record.system_identifier:
        raise OperationFailed(
            f"this PostgreSQL cluster (system identifier {record.system_identifier}) is not "
            f"the one archived as server {repo.server!r} in {repo.storage.url} "
            f"(system identifier {current.system_identifier})",
            hint="use another --server name (or another --repo) for this cluster",
        )
    return current
