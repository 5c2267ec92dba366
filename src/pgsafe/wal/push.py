"""``wal-push``: store one WAL file in the repository, compressed, atomically (lean).

The same name arriving again is accepted when the content is identical (PostgreSQL
retries an archive_command whose success it did not see) and refused loudly otherwise:
the stored copy is never replaced.  Segments carry the cluster's system identifier in
their first page header; it must match the repository's server record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import zstandard

from pgsafe.errors import BadInput, ObjectExists, OperationFailed
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout, names, server_record
from pgsafe.wal.header import read_long_header

WAL_LEVEL = 1  # zstd level for WAL: cheap, and WAL compresses well at any level


@dataclass(frozen=True)
class PushResult:
    name: str
    key: str
    status: str  # "stored" | "already archived"
    raw_bytes: int
    stored_bytes: int


def _check_header(repo: Repository, wal: names.WalName, data: bytes) -> None:
    try:
        header = read_long_header(data)
    except ValueError as exc:
        raise OperationFailed(f"{wal.name} is not a valid WAL segment: {exc}") from None
    if header.timeline != wal.timeline:
        raise OperationFailed(
            f"{wal.name} claims timeline {wal.timeline} but its header says {header.timeline}"
        )
    record = server_record.ensure(
        repo,
        server_record.ServerRecord(str(header.system_identifier), header.segment_size),
    )
    if record.wal_segment_size != header.segment_size:
        raise OperationFailed(
            f"{wal.name} uses {header.segment_size}-byte segments, but server "
            f"{repo.server!r} was archived with {record.wal_segment_size}-byte segments"
        )
    if wal.kind == "segment" and len(data) != header.segment_size:
        raise OperationFailed(
            f"{wal.name} is {len(data)} bytes long, not {header.segment_size}: "
            "it is incomplete and was not archived"
        )


def _stored_digest(repo: Repository, key: str) -> str:
    h = hashlib.sha256()
    with repo.storage.open(key) as f:
        reader = zstandard.ZstdDecompressor().stream_reader(f)
        while chunk := reader.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def push(repo: Repository, path: str) -> PushResult:
    """Archive the WAL file at ``path`` (as PostgreSQL's ``%p``)."""
    base = os.path.basename(path)
    wal = names.parse(base)
    if wal is None:
        raise BadInput(
            f"{base!r} is not a WAL file name PostgreSQL archives",
            hint="archive_command must pass %p (the path of the file to archive)",
        )
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise OperationFailed(f"cannot read {path}: {exc.strerror}") from None
    if wal.has_header:
        _check_header(repo, wal, data)
    key = layout.wal_key(repo.server, wal)
    compressed = zstandard.ZstdCompressor(level=WAL_LEVEL, write_checksum=True).compress(data)
    try:
        stored = repo.storage.put(key, [compressed])
        return PushResult(base, key, "stored", len(data), stored)
    except ObjectExists:
        pass
    if _stored_digest(repo, key) == hashlib.sha256(data).hexdigest():
        st = repo.storage.stat(key)
        return PushResult(base, key, "already archived", len(data), st.size if st else 0)
    raise OperationFailed(
        f"{base} is already archived in {repo.storage.url} with DIFFERENT content; "
        "the archived copy was kept and this one was NOT archived",
        hint="two clusters may be archiving into the same --repo/--server, or the cluster "
        "was restored without a new timeline; check archive_command on every server",
    )
