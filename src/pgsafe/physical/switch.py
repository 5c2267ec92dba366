"""Force a WAL segment switch and wait for the segment to arrive in the repository.

Used by ``pgsafe check`` (archiving works end to end), by the PITR scenario and by tests:
the recoverable window ends with the last *archived* segment.
"""

from __future__ import annotations

import time

from pgsafe.errors import OperationFailed
from pgsafe.pg.connect import Connection
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout, names


def force_switch(conn: Connection) -> str:
    """Close the current segment (writing a commit first, so there is one); its name."""
    conn.execute("SELECT pg_current_xact_id()")  # autocommit: a commit record
    row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    return str(row[0])


def is_archived(repo: Repository, name: str) -> bool:
    wal = names.parse(name)
    assert wal is not None
    from pgsafe.repo.storage.mirror import MirrorStorage

    key = layout.wal_key(repo.server, wal, repo.codec_spec().suffix)
    if isinstance(repo.storage, MirrorStorage):  # archived means: in every repository
        return all(m.storage.stat(key) is not None for m in repo.storage.members)
    return repo.storage.stat(key) is not None


def wait_archived(repo: Repository, name: str, timeout: float = 60) -> float:
    """Seconds it took for ``name`` to appear in the repository; raise after ``timeout``."""
    t0 = time.monotonic()
    while not is_archived(repo, name):
        if time.monotonic() - t0 > timeout:
            raise OperationFailed(
                f"WAL segment {name} did not arrive in {repo.storage.url} within {timeout:.0f} s",
                hint="check archive_command and pg_stat_archiver (last_failed_wal) on the server",
            )
        time.sleep(0.05)
    return time.monotonic() - t0


def switch_and_wait(conninfo: str, repo: Repository, timeout: float = 60) -> str:
    from pgsafe.pg.connect import connect

    with connect(conninfo) as conn:
        name = force_switch(conn)
    wait_archived(repo, name, timeout)
    return name
