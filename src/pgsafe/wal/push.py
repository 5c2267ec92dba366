"""``wal-push``: store one WAL file in the repository through its codec, atomically (lean).

The file is compressed (and encrypted) as the repository's marker says, and stored
under its name plus the codec's suffix (``.zst``, ``.lz4.age``...).  zstd WAL uses level
1 whatever the repository's level: a 16 MiB segment takes about 0.04 s at level 1 and
compresses nearly as well as at 3 (WAL is mostly page images and tuples already
written once), and ``wal-push`` sits on PostgreSQL's archiving path.  lz4 and gzip
keep the repository's level.

The same name arriving again is accepted when the content is identical (PostgreSQL
retries an archive_command whose success it did not see) and refused loudly otherwise:
the stored copy is never replaced.  The comparison is on plaintext (an encrypted copy
differs byte for byte on every write).  An encrypted repository's archiving host may
hold only the public recipients and cannot decrypt, so there the sha256 of the
plaintext is stored first, under ``<server>/wal-digests/`` (as pgBackRest keeps a hash
of each segment), and a retry is compared with it.

Segments carry the cluster's system identifier in their first page header; it must
match the repository's server record.  These rules (and the "same content: accepted,
other content: refused" rule) are in :mod:`pgsafe.wal.rules`, which the fast path
(:mod:`pgsafe.wal.fastpush`) applies too; the write itself is the posix storage's
(:mod:`pgsafe.repo.storage.atomic`), which the fast path shares as well.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pgsafe.errors import BadInput, ObjectExists, OperationFailed
from pgsafe.repo.repository import Repository
from pgsafe.wal import layout, names, rules, server_record
from pgsafe.wal.header import read_long_header
from pgsafe.wal.rules import WAL_LEVEL

if TYPE_CHECKING:
    from pgsafe.repo.codec.pipeline import Pipeline


@dataclass(frozen=True)
class PushResult:
    name: str
    key: str
    status: str  # "stored" | "already archived"
    raw_bytes: int
    stored_bytes: int


def _check_header(repo: Repository, wal: names.WalName, data: bytes) -> None:
    """The rules of :mod:`pgsafe.wal.rules` (the fast path applies the same ones), the
    server record written first when there is none yet."""
    try:
        header = read_long_header(data)
    except ValueError as exc:
        raise OperationFailed(f"{wal.name} is not a valid WAL segment: {exc}") from None
    rules.check_timeline(wal.name, wal.timeline, header)
    record = server_record.ensure(
        repo,
        server_record.ServerRecord(str(header.system_identifier), header.segment_size),
    )
    length = len(data) if wal.kind == "segment" else None
    rules.check_size(wal.name, header, record.wal_segment_size, repo.server, length)


def wal_encoder(repo: Repository) -> Pipeline:
    """The repository's pipeline, with zstd at level 1 (see the module docstring)."""
    from pgsafe.repo.codec.pipeline import Pipeline

    spec = repo.codec_spec()
    if spec.compression == "zstd":
        spec = replace(spec, level=WAL_LEVEL)
    return Pipeline(spec, repo.age_keys_if_any())


def _stored_digest(repo: Repository, key: str) -> str:
    """sha256 of the plaintext of the stored object ``key``."""
    decoder = repo.decoder(key.rsplit("/", 1)[-1])
    try:
        decoder.check_decode()
    except BadInput:
        raise OperationFailed(
            f"{key} is already archived and this host cannot decrypt it to compare the "
            "two copies (it holds only the public age recipients); nothing was changed",
            hint="if the same segment was archived twice (a retry after a crash), give the "
            "archive_command PGSAFE_AGE_IDENTITY_FILE, or check the stored copy on the "
            "restoring host with pgsafe wal-get and remove the new file from the retry",
        ) from None
    h = hashlib.sha256()
    with repo.storage.open(key) as f:
        for piece in decoder.decode(f, what=key):
            h.update(piece)
    return h.hexdigest()


def _claim_digest(repo: Repository, name: str, digest: str) -> None:
    """Record the plaintext's sha256 before the (encrypted) segment; a different one
    already recorded means different content under the same name: refuse."""
    key = layout.digest_key(repo.server, name)
    try:
        repo.storage.put(key, [digest.encode() + b"\n"])
        return
    except ObjectExists:
        pass
    with repo.storage.open(key) as f:
        stored = f.read().decode(errors="replace").strip()
    if stored != digest:
        raise rules.different_content(name, repo.storage.url)


def push(repo: Repository, path: str) -> PushResult:
    """Archive the WAL file at ``path`` (as PostgreSQL's ``%p``)."""
    base = os.path.basename(path)
    wal = names.parse(base)
    if wal is None:
        raise BadInput(
            f"{base!r} is not a WAL file name PostgreSQL archives",
            hint="archive_command must pass %p (the path of the file to archive)",
        )
    encoder = wal_encoder(repo)
    encoder.check_encode()  # no key to encrypt with: exit 2 before reading anything
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise OperationFailed(f"cannot read {path}: {exc.strerror}") from None
    if wal.has_header:
        _check_header(repo, wal, data)
    key = layout.wal_key(repo.server, wal, encoder.suffix)
    # the plaintext's sha256 only where it is compared: recorded before an encrypted
    # segment, or against the stored copy when the name is already taken (the storage
    # layer hashes the stored bytes itself)
    if encoder.spec.encryption is not None:
        _claim_digest(repo, wal.name, hashlib.sha256(data).hexdigest())
    try:
        stored = repo.storage.put(key, encoder.encode([data]))
        return PushResult(base, key, "stored", len(data), stored)
    except ObjectExists:
        pass
    if (
        encoder.spec.encryption is not None
        or _stored_digest(repo, key) == hashlib.sha256(data).hexdigest()
    ):
        st = repo.storage.stat(key)
        return PushResult(base, key, "already archived", len(data), st.size if st else 0)
    raise rules.different_content(base, repo.storage.url)
