"""``pgsafe mark NAME``: a named restore point in WAL and in the catalog.

The catalog entry keeps the restore point's LSN, so that ``recover --name`` can be
planned (backup, WAL needed, window) like an LSN target.
"""

from __future__ import annotations

import json
from datetime import datetime

from pgsafe.errors import BadInput, ObjectExists
from pgsafe.models.marks import RestorePoint
from pgsafe.pg.connect import connect
from pgsafe.physical.server import facts, require_superuser
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout, names, server_record


def mark(conninfo: str, repo: Repository, name: str) -> RestorePoint:
    if not names.RESTORE_POINT.match(name):
        raise BadInput(
            f"bad restore point name {name!r}",
            hint="use letters, digits, '_', '.', ':' and '-' (at most 63 characters)",
        )
    key = layout.mark_key(repo.server, name)
    with repo.lock("mark"):  # refuses a repository that cannot be written, before the server
        return _mark(conninfo, repo, name, key)


def _mark(conninfo: str, repo: Repository, name: str, key: str) -> RestorePoint:
    if repo.storage.stat(key) is not None:
        raise BadInput(
            f"a restore point named {name!r} already exists",
            hint="choose another name (recovery stops at the first point of a name)",
        )
    with connect(conninfo) as conn:
        f = facts(conn)
        require_superuser(f, "mark")
        if f.in_recovery:
            raise BadInput("restore points cannot be created during recovery")
        server_record.ensure(repo, f.record())
        row = conn.execute(
            "SELECT pg_create_restore_point(%s)::text, clock_timestamp(),"
            " pg_walfile_name(pg_current_wal_lsn())",
            (name,),
        ).fetchone()
    assert row is not None
    at: datetime = row[1]
    lsn = names.parse_lsn(str(row[0]))
    point = RestorePoint(
        name=name,
        lsn=names.format_lsn(lsn),
        lsn_int=lsn,
        time=at.isoformat(),
        timeline=int(str(row[2])[:8], 16),
        segment=str(row[2]),
    )
    try:
        repo.storage.put(key, [json.dumps(point.to_json(), indent=2).encode() + b"\n"])
    except ObjectExists:
        raise BadInput(f"a restore point named {name!r} already exists") from None
    return point


__all__ = ["RestorePoint", "mark"]
