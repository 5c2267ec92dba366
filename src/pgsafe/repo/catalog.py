"""The catalog entry of one backup: ``manifest.json`` beside its objects.

The manifest is written last, atomically: a backup folder without a manifest is an
interrupted backup and is never listed.  Each manifest carries a sha256 of its own
canonical JSON so that a damaged manifest is detected and named.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pgsafe.errors import VerificationFailed

FORMAT_VERSION = 1


@dataclass
class StoredObject:
    """One object of a backup: name relative to the backup folder, stored size and hash."""

    name: str
    size: int
    sha256: str
    raw_size: int
    compression: str = "zstd"
    role: str = "data"


@dataclass
class Verification:
    at: str
    ok: bool
    kind: str = "verify"
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Manifest:
    id: str
    kind: str  # "logical" | "physical"
    server: str
    status: str  # "ok" | "failed"
    started_at: str
    finished_at: str
    database: str | None = None
    format: str | None = None  # custom | plain | directory | all | tar
    label: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    pg_version: str | None = None
    pg_major: int | None = None
    system_identifier: str | None = None
    objects: list[StoredObject] = field(default_factory=list)
    fingerprint: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    physical: dict[str, Any] = field(default_factory=dict)
    verifications: list[Verification] = field(default_factory=list)
    keep: bool = False
    pgsafe_version: str = ""
    format_version: int = FORMAT_VERSION

    # -- derived ---------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def raw_bytes(self) -> int:
        return sum(o.raw_size for o in self.objects)

    @property
    def last_verification(self) -> Verification | None:
        return self.verifications[-1] if self.verifications else None

    def object(self, role: str) -> StoredObject | None:
        for o in self.objects:
            if o.role == role:
                return o
        return None

    # -- (de)serialisation ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["objects"] = [StoredObject(**o) for o in data.get("objects", [])]
        kw["verifications"] = [Verification(**v) for v in data.get("verifications", [])]
        return cls(**kw)


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode(manifest: Manifest) -> bytes:
    body = manifest.to_dict()
    checksum = hashlib.sha256(_canonical(body)).hexdigest()
    doc = {"manifest": body, "sha256": checksum}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def decode(data: bytes, where: str) -> Manifest:
    try:
        doc = json.loads(data)
        body = doc["manifest"]
        expected = doc["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"catalog entry {where} is damaged: {exc}") from None
    if hashlib.sha256(_canonical(body)).hexdigest() != expected:
        raise VerificationFailed(
            f"catalog entry {where} is damaged: its checksum does not match",
            hint="the manifest was changed outside pgsafe; restore it from a copy",
        )
    return Manifest.from_dict(body)
