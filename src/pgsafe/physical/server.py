"""Facts about a running PostgreSQL server that the physical commands need."""

from __future__ import annotations

from dataclasses import dataclass

from pgsafe.errors import BadInput
from pgsafe.pg.connect import Connection
from pgsafe.wal.server_record import ServerRecord


@dataclass(frozen=True)
class ServerFacts:
    system_identifier: str
    major: int
    version: str
    wal_segment_size: int
    data_directory: str
    wal_level: str
    archive_mode: str
    archive_command: str
    in_recovery: bool
    is_superuser: bool

    def record(self) -> ServerRecord:
        return ServerRecord(self.system_identifier, self.wal_segment_size, self.major)


def facts(conn: Connection) -> ServerFacts:
    row = conn.execute(
        "SELECT (SELECT system_identifier FROM pg_control_system())::text,"
        " current_setting('server_version_num')::int / 10000,"
        " current_setting('server_version'),"
        " current_setting('wal_segment_size'),"
        " current_setting('data_directory'),"
        " current_setting('wal_level'), current_setting('archive_mode'),"
        " current_setting('archive_command'), pg_is_in_recovery(),"
        " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    assert row is not None
    return ServerFacts(
        system_identifier=str(row[0]),
        major=int(row[1]),
        version=str(row[2]),
        wal_segment_size=_bytes(str(row[3])),
        data_directory=str(row[4]),
        wal_level=str(row[5]),
        archive_mode=str(row[6]),
        archive_command=str(row[7]),
        in_recovery=bool(row[8]),
        is_superuser=bool(row[9]),
    )


def _bytes(setting: str) -> int:
    units = {"kB": 1024, "MB": 1024**2, "GB": 1024**3}
    for suffix, factor in units.items():
        if setting.endswith(suffix):
            return int(setting[: -len(suffix)]) * factor
    return int(setting)


def require_superuser(f: ServerFacts, what: str) -> None:
    if not f.is_superuser:
        raise BadInput(
            f"{what} needs a superuser connection",
            hint="connect as a superuser (e.g. -U postgres)",
        )
