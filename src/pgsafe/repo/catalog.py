"""The catalog entry of one backup: ``manifest.json`` beside its objects.

The manifest is written last, atomically: a backup folder without a manifest is an
interrupted backup and is never listed.  Each manifest carries a sha256 of its own
canonical JSON so that a damaged manifest is detected and named.  That checksum has no
key: it catches accidents, not an attacker who can write the repository.  So
:func:`decode` also checks the body against the catalog's schema
(:mod:`pgsafe.repo.catalog_schema`): an entry with a field of the wrong type, a missing
key, a bad id or object name, or an absurd size raises
:class:`~pgsafe.repo.catalog_schema.CatalogDamaged`, and the repository shows that one
backup as DAMAGED.  Unknown keys are kept (``extra``) and written back unchanged.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from pgsafe.errors import VerificationFailed
from pgsafe.models.backup import (
    Fingerprints,
    JsonObject,
    PhysicalDetails,
    TableFingerprint,
    VerificationCheck,
)
from pgsafe.models.kinds import BackupKind, BackupStatus, VerificationKind
from pgsafe.repo.catalog_names import backup_id_problem, object_name_problem
from pgsafe.repo.catalog_schema import (
    KINDS,
    MAX_VERIFICATIONS,
    SHA256_RE,
    CatalogDamaged,
    Checker,
    check_from,
    check_options,
    fingerprints_from,
    physical_from,
    unknown,
)

FORMAT_VERSION = 1


def _plain(obj: StoredObject | Verification | Manifest) -> JsonObject:
    """A dataclass's known fields, then its ``extra`` keys (unknown ones, kept as read)."""
    out = {f.name: getattr(obj, f.name) for f in fields(obj) if f.name != "extra"}
    for k, v in obj.extra.items():
        out.setdefault(k, v)
    return out


def _present(obj: PhysicalDetails | TableFingerprint | VerificationCheck) -> JsonObject:
    """A catalog model's fields that have a value (``None`` is an absent key), then its
    ``extra`` keys."""
    out: JsonObject = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name != "extra" and value is not None:
            out[f.name] = list(value) if isinstance(value, list) else value
    for k, v in obj.extra.items():
        out.setdefault(k, v)
    return out


def physical_doc(p: PhysicalDetails) -> JsonObject:
    """A backup's ``physical`` as the catalog stores it (and ``show`` prints it)."""
    return _present(p)


def fingerprints_doc(prints: Fingerprints) -> JsonObject:
    """A backup's ``fingerprint`` as the catalog stores it (and ``show`` prints it)."""
    return {db: {t: _present(fp) for t, fp in tables.items()} for db, tables in prints.items()}


def check_doc(check: VerificationCheck) -> JsonObject:
    return _present(check)


@dataclass
class StoredObject:
    """One object of a backup: name relative to the backup folder, stored size and hash."""

    name: str
    size: int
    sha256: str
    raw_size: int
    compression: str = "zstd"
    role: str = "data"
    extra: JsonObject = field(default_factory=dict, repr=False)

    def to_dict(self) -> JsonObject:
        return _plain(self)

    @classmethod
    def from_dict(cls, c: Checker, data: object, at: str) -> StoredObject:
        d = c.dict_(data, at)
        for key in ("name", "size", "sha256", "raw_size"):
            if key not in d:
                raise c.fail(at, f"has no {key!r}")
        problem = object_name_problem(d["name"])
        if problem:
            raise c.fail(f"{at}.name", problem)
        return cls(
            name=c.str_(d["name"], f"{at}.name"),
            size=c.int_(d["size"], f"{at}.size"),
            sha256=c.pattern(d["sha256"], f"{at}.sha256", SHA256_RE, "a sha256 in hex"),
            raw_size=c.int_(d["raw_size"], f"{at}.raw_size"),
            compression=c.str_(d.get("compression", "zstd"), f"{at}.compression", 64, plain=True),
            role=c.str_(d.get("role", "data"), f"{at}.role", 300, plain=True),
            extra=unknown(cls, d),
        )


@dataclass
class Verification:
    at: str
    ok: bool
    kind: str = VerificationKind.VERIFY  # a VerificationKind; a newer pgsafe's kind is kept
    checks: list[VerificationCheck] = field(default_factory=list)
    extra: JsonObject = field(default_factory=dict, repr=False)

    def to_dict(self) -> JsonObject:
        out = _plain(self)
        out["checks"] = [check_doc(c) for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, c: Checker, data: object, at: str) -> Verification:
        d = c.dict_(data, at)
        for key in ("at", "ok"):
            if key not in d:
                raise c.fail(at, f"has no {key!r}")
        checks = c.list_(d.get("checks", []), f"{at}.checks")
        return cls(
            at=c.time(d["at"], f"{at}.at"),
            ok=c.bool_(d["ok"], f"{at}.ok"),
            kind=c.str_(d.get("kind", "verify"), f"{at}.kind", 64, plain=True),
            checks=[check_from(c, x, f"{at}.checks[{i}]") for i, x in enumerate(checks)],
            extra=unknown(cls, d),
        )


_REQUIRED = ("id", "kind", "server", "status", "started_at", "finished_at")


@dataclass
class Manifest:
    id: str
    kind: BackupKind
    server: str
    status: str  # a BackupStatus ("ok" | "failed"); a newer pgsafe's status is kept as read
    started_at: str
    finished_at: str
    database: str | None = None
    format: str | None = None  # a BackupFormat: custom | plain | directory | all | tar
    label: str | None = None
    # pg_dump's / pg_basebackup's options as the backup recorded them (checked on decode by
    # catalog_schema.check_options); read by key in logical.restore and verify
    options: dict[str, Any] = field(default_factory=dict)
    pg_version: str | None = None
    pg_major: int | None = None
    system_identifier: str | None = None
    objects: list[StoredObject] = field(default_factory=list)
    fingerprint: Fingerprints = field(default_factory=dict)
    physical: PhysicalDetails = field(default_factory=PhysicalDetails)
    verifications: list[Verification] = field(default_factory=list)
    keep: bool = False
    pgsafe_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: JsonObject = field(default_factory=dict, repr=False)

    # -- derived ---------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def raw_bytes(self) -> int:
        return sum(o.raw_size for o in self.objects)

    @property
    def ok(self) -> bool:
        return self.status == BackupStatus.OK

    @property
    def last_verification(self) -> Verification | None:
        return self.verifications[-1] if self.verifications else None

    def object(self, role: str) -> StoredObject | None:
        for o in self.objects:
            if o.role == role:
                return o
        return None

    # -- (de)serialisation ---------------------------------------------------
    def to_dict(self) -> JsonObject:
        out = _plain(self)
        out["fingerprint"] = fingerprints_doc(self.fingerprint)
        out["physical"] = physical_doc(self.physical)
        out["objects"] = [o.to_dict() for o in self.objects]
        out["verifications"] = [v.to_dict() for v in self.verifications]
        return out

    @classmethod
    def from_dict(cls, data: builtins.object, where: str = "manifest") -> Manifest:
        """The manifest of a body read from a repository, every field checked."""
        c = Checker(where)
        d = c.dict_(data, "the manifest")
        for key in _REQUIRED:
            if key not in d:
                raise c.fail("the manifest", f"has no {key!r}")
        problem = backup_id_problem(d["id"])
        if problem:
            raise c.fail("id", problem)
        kind = c.str_(d["kind"], "kind", 32, plain=True)
        if kind not in KINDS:
            raise c.fail("kind", f"{kind!r} is not a kind this pgsafe knows ({', '.join(KINDS)})")
        version = c.int_(d.get("format_version", FORMAT_VERSION), "format_version", 1000)
        if version > FORMAT_VERSION:
            raise c.fail("format_version", f"{version} is newer than this pgsafe's")
        objects = [
            StoredObject.from_dict(c, o, f"objects[{i}]")
            for i, o in enumerate(c.list_(d.get("objects", []), "objects"))
        ]
        seen: set[str] = set()
        for o in objects:
            if o.name in seen:
                raise c.fail("objects", f"{o.name!r} appears twice")
            seen.add(o.name)
        options = c.dict_(d.get("options", {}), "options")
        check_options(c, options)
        verifications = c.list_(d.get("verifications", []), "verifications", MAX_VERIFICATIONS)
        return cls(
            id=c.str_(d["id"], "id"),
            kind=BackupKind(kind),
            server=c.str_(d["server"], "server", 64, plain=True),
            status=c.str_(d["status"], "status", 32, plain=True),
            started_at=c.time(d["started_at"], "started_at"),
            finished_at=c.time(d["finished_at"], "finished_at"),
            database=c.opt_str(d.get("database"), "database", 1024),
            format=c.opt_str(d.get("format"), "format", 32),
            label=c.opt_str(d.get("label"), "label", 4096),
            options=options,
            pg_version=c.opt_str(d.get("pg_version"), "pg_version", 256),
            pg_major=c.opt_int(d.get("pg_major"), "pg_major", 1000),
            system_identifier=c.opt_str(d.get("system_identifier"), "system_identifier", 64),
            objects=objects,
            fingerprint=fingerprints_from(c, d.get("fingerprint", {})),
            physical=physical_from(c, d.get("physical", {})),
            verifications=[
                Verification.from_dict(c, v, f"verifications[{i}]")
                for i, v in enumerate(verifications)
            ],
            keep=c.bool_(d.get("keep", False), "keep"),
            pgsafe_version=c.str_(d.get("pgsafe_version", ""), "pgsafe_version", 64, plain=True),
            format_version=version,
            extra=unknown(cls, d),
        )


@dataclass(frozen=True)
class DamagedEntry:
    """A backup folder whose manifest cannot be read as a backup, and why."""

    id: str
    reason: str


def _canonical(body: object) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(body: object) -> str:
    """The sha256 a manifest document carries beside its body."""
    return hashlib.sha256(_canonical(body)).hexdigest()


def encode(manifest: Manifest) -> bytes:
    body = manifest.to_dict()
    doc = {"manifest": body, "sha256": checksum(body)}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def decode(data: bytes, where: str, *, expected_id: str | None = None) -> Manifest:
    """The manifest stored as ``data`` (at ``where``, for messages).

    Raises :class:`CatalogDamaged` (a :class:`VerificationFailed`, exit 3) for anything
    that is not a well-formed, checksum-consistent catalog entry, and when
    ``expected_id`` (the folder the manifest was read from) differs from its ``id``.
    """
    c = Checker(where)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8 and JSON; RecursionError a hostile nesting depth
        raise c.fail("the file", f"is not JSON ({_short(exc)})") from None
    d = c.dict_(doc, "the file")
    if "manifest" not in d or "sha256" not in d:
        raise c.fail("the file", "has no 'manifest' and 'sha256'")
    body = d["manifest"]
    expected = d["sha256"]
    try:
        actual = checksum(body)
    except (TypeError, ValueError, RecursionError) as exc:
        raise c.fail("manifest", _short(exc)) from None
    if actual != expected:
        raise CatalogDamaged(
            f"catalog entry {where} is damaged: its checksum does not match",
            hint="the manifest was changed outside pgsafe; restore it from a copy",
        )
    m = Manifest.from_dict(body, where)
    if expected_id is not None and m.id != expected_id:
        raise c.fail("id", f"{m.id!r} is not the folder it is in ({expected_id!r})")
    return m


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


__all__ = [
    "FORMAT_VERSION",
    "CatalogDamaged",
    "DamagedEntry",
    "Manifest",
    "StoredObject",
    "Verification",
    "VerificationFailed",
    "check_doc",
    "checksum",
    "decode",
    "encode",
    "fingerprints_doc",
    "physical_doc",
]
