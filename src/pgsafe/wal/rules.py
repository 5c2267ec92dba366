"""What a WAL file must satisfy to be archived, and the server record's schema (lean).

One implementation for both ways into the archive: the full path
(:mod:`pgsafe.wal.push`, :mod:`pgsafe.wal.server_record`) raises the errors these
functions raise; ``wal-push``'s fast path (:mod:`pgsafe.wal.fastpush`) declines the
segment on any of them and leaves the full path to say it.

* The server record (``<server>/server.json``) is untrusted input: its system
  identifier is a decimal number, its segment size one PostgreSQL can have.
* A segment's long page header must name the timeline of its file name (or an older
  one: the first segment of a new timeline begins with its parent's pages, copied up
  to the switch point, when a recovery ended inside a segment), the system
  identifier of the server record (WAL of another cluster is refused), the record's
  segment size, and a plain segment must be exactly that long.
* WAL is compressed at zstd level :data:`WAL_LEVEL` whatever the repository's level.
* A name already archived: the same content is accepted (PostgreSQL retries an
  archive_command whose success it did not see), other content is refused and the
  stored copy kept (:func:`different_content`).  Only the full path compares.

Built-in modules and :mod:`pgsafe.errors` only: the fast path's launcher imports this.
"""

from __future__ import annotations

from pgsafe.errors import OperationFailed

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from pgsafe.wal.header import LongHeader

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
WAL_LEVEL = 1  # zstd level for WAL: cheap, and WAL compresses well (pgsafe.wal.push)


def checked_record(doc: object) -> tuple[str, int, int | None]:
    """``(system_identifier, wal_segment_size, pg_major)`` of a server record, checked;
    ValueError (or KeyError) names the field that is wrong.

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
    return sysid, size, major or None


def check_timeline(name: str, timeline: int, header: LongHeader) -> None:
    """The header's timeline is the one of the file's name, or an older one (the first
    segment of a timeline starts with a copy of its parent's segment)."""
    if not 1 <= header.timeline <= timeline:
        raise OperationFailed(
            f"{name} claims timeline {timeline} but its header says {header.timeline}"
        )


def check_system(system_identifier: str, stored: str, server: str, url: str) -> None:
    """The cluster (``system_identifier``) is the one archived as ``server`` (``stored``)."""
    if system_identifier != stored:
        raise OperationFailed(
            f"this PostgreSQL cluster (system identifier {system_identifier}) is not "
            f"the one archived as server {server!r} in {url} "
            f"(system identifier {stored})",
            hint="use another --server name (or another --repo) for this cluster",
        )


def check_size(
    name: str, header: LongHeader, stored_size: int, server: str, length: int | None
) -> None:
    """The header's segment size is the server's; ``length`` (given for a plain
    segment) is the whole segment."""
    if stored_size != header.segment_size:
        raise OperationFailed(
            f"{name} uses {header.segment_size}-byte segments, but server "
            f"{server!r} was archived with {stored_size}-byte segments"
        )
    if length is not None and length != header.segment_size:
        raise OperationFailed(
            f"{name} is {length} bytes long, not {header.segment_size}: "
            "it is incomplete and was not archived"
        )


def different_content(name: str, url: str) -> OperationFailed:
    """The refusal of a name already archived with other content."""
    return OperationFailed(
        f"{name} is already archived in {url} with DIFFERENT content; "
        "the archived copy was kept and this one was NOT archived",
        hint="two clusters may be archiving into the same --repo/--server, or the cluster "
        "was restored without a new timeline; check archive_command on every server",
    )
