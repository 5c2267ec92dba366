"""The repository's record of the PostgreSQL server it archives (lean).

It pins the system identifier: WAL from another cluster is refused by ``wal-push``.
The first of ``archive enable``, ``backup`` or ``wal-push`` to run writes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from pgsafe.errors import ObjectExists, VerificationFailed
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import RECORD_LIMIT, read_all
from pgsafe.wal import rules
from pgsafe.wal.layout import server_record_key
from pgsafe.wal.rules import DEFAULT_SEGMENT_SIZE


@dataclass(frozen=True)
class ServerRecord:
    system_identifier: str
    wal_segment_size: int = DEFAULT_SEGMENT_SIZE
    pg_major: int | None = None


def _checked(doc: object) -> ServerRecord:
    """The record a repository holds, checked (:func:`pgsafe.wal.rules.checked_record`):
    it is untrusted input like the catalog."""
    return ServerRecord(*rules.checked_record(doc))


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

    Raises :class:`~pgsafe.errors.OperationFailed` when the stored one names another
    system (:func:`pgsafe.wal.rules.check_system`).
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
    rules.check_system(
        record.system_identifier, current.system_identifier, repo.server, repo.storage.url
    )
    return current
