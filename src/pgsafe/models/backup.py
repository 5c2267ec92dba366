"""The typed parts of a backup's catalog entry: base-backup facts, data fingerprints and
the checks of a verification.

These are plain frozen dataclasses, no JSON: a manifest body is decoded into them in one
place (:mod:`pgsafe.repo.catalog_schema`, every value checked) and encoded in one place
(:mod:`pgsafe.repo.catalog`).  A field that a manifest may lack — written by an older
pgsafe, or a fact PostgreSQL did not give — is ``None``, and ``None`` is not written back
(the key stays absent, as it was).  Keys this pgsafe does not know are kept in ``extra``
and written back unchanged, so a newer pgsafe's additions survive a re-save.
"""

from __future__ import annotations

from dataclasses import dataclass, field

JsonObject = dict[str, object]
"""A JSON object as :func:`json.loads` gives it: raw data at a boundary, before it is
checked and turned into a typed model (or kept as read, in an ``extra``)."""

MATVIEW = "matview"  # TableFingerprint.kind of a materialized view


@dataclass(frozen=True)
class TableFingerprint:
    """One table's data fingerprint (:mod:`pgsafe.logical.fingerprint`): its row count and
    content hash, the per-table method, and for ``named-hash`` a digest of its columns;
    a materialized view also records whether it was populated and fresh."""

    rows: int | None = None
    hash: str | None = None
    method: str | None = None
    columns: str | None = None
    kind: str | None = None  # MATVIEW for a materialized view, else absent
    populated: bool | None = None
    fresh: bool | None = None
    extra: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """Both a row count and a hash (a materialized view not populated has neither)."""
        return self.rows is not None and self.hash is not None


TablePrints = dict[str, TableFingerprint]
"""A database's fingerprints: qualified table name (``schema.table``) to its print."""

Fingerprints = dict[str, TablePrints]
"""A backup's fingerprints per database (``""``: the one database of a single dump)."""


@dataclass(frozen=True)
class PhysicalDetails:
    """What the catalog records of a base backup, from ``backup_label``, the server's
    ``backup_manifest`` and the end of the backup; empty for a logical backup."""

    start_lsn: str | None = None
    stop_lsn: str | None = None
    timeline: int | None = None
    stop_timeline: int | None = None
    start_wal: str | None = None
    stop_wal: str | None = None
    wal_segment_size: int | None = None
    # backup_manifest's "WAL-Ranges" as PostgreSQL wrote them (shown by ``show``, not read)
    wal_ranges: list[object] | None = None
    backup_label: str | None = None
    checkpoint_lsn: str | None = None
    server_start_time: str | None = None
    next_xid: int | None = None
    timezone: str | None = None
    compression: str | None = None
    raw_sha256: str | None = None
    extra: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class VerificationCheck:
    """One named check of a recorded verification, passed or not, with its detail."""

    name: str
    ok: bool
    detail: str = ""
    extra: JsonObject = field(default_factory=dict, repr=False, compare=False)
