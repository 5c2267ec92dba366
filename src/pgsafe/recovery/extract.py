"""Unpack a stored base backup (``base.tar.zst``) into a data directory.

The stored bytes are checked against the catalog's sha256 as they stream by; member
names are checked so nothing lands outside the directory (no absolute paths, no ``..``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path
from typing import IO

import zstandard

from pgsafe.errors import VerificationFailed
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository


class _HashingReader:
    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _safe(root: Path, name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise VerificationFailed(f"backup member {name!r} would land outside the data directory")
    return root / rel


def extract(repo: Repository, manifest: Manifest, pgdata: Path) -> int:
    """Extract the backup into ``pgdata`` (which exists and is empty); bytes written."""
    obj = manifest.object("data")
    if obj is None:
        raise VerificationFailed(f"backup {manifest.id} has no data object")
    written = 0
    with repo.storage.open(repo.object_key(manifest.id, obj.name)) as f:
        hashing = _HashingReader(f)
        reader = zstandard.ZstdDecompressor().stream_reader(hashing)  # type: ignore[arg-type]
        with tarfile.open(fileobj=reader, mode="r|", bufsize=1 << 20) as tar:
            for m in tar:
                dest = _safe(pgdata, m.name)
                if m.isdir():
                    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
                elif m.isreg():
                    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    src = tar.extractfile(m)
                    assert src is not None
                    with open(dest, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    os.chmod(dest, m.mode & 0o777 or 0o600)
                    written += m.size
                elif m.issym():
                    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    os.symlink(m.linkname, dest)
        hashing.drain()
    if hashing.sha.hexdigest() != obj.sha256:
        raise VerificationFailed(
            f"backup {manifest.id}: {obj.name} does not match its checksum (stored object damaged)",
            hint="recover from another backup with --backup ID",
        )
    return written
