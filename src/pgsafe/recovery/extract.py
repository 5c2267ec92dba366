"""Unpack a stored base backup (``base.tar`` + codec suffix) into a data directory.

The object is read through :meth:`Repository.open_object` (with several repositories,
the first copy whose bytes match the catalog) and decoded by the pipeline its suffixes
name (decompression, age decryption).  The stored bytes are checked against the
catalog's sha256 as they stream by; member names are checked so nothing lands outside
the directory (no absolute paths, no ``..``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pgsafe.errors import VerificationFailed
from pgsafe.repo.catalog import Manifest, StoredObject
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


class _IterReader:
    """A read-only file object over an iterator of byte pieces (for tarfile's stream mode)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._it = pieces
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            piece = next(self._it, None)
            if piece is None:
                break
            self._buf += piece
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _safe(root: Path, name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise VerificationFailed(f"backup member {name!r} would land outside the data directory")
    return root / rel


def data_object(manifest: Manifest) -> StoredObject:
    obj = manifest.object("data")
    if obj is None:
        raise VerificationFailed(f"backup {manifest.id} has no data object")
    return obj


def check_readable(repo: Repository, manifest: Manifest) -> None:
    """Decode the start of the base backup: a missing or wrong key raises BadInput (and
    a damaged header VerificationFailed) before anything is written anywhere."""
    obj = data_object(manifest)
    decoder = repo.decoder(obj.name)
    decoder.check_decode()
    if decoder.spec.encryption is None:
        return
    with repo.storage.open(repo.object_key(manifest.id, obj.name)) as f:
        next(decoder.decode(f, what=f"object {obj.name}"), b"")


def _mismatch(manifest: Manifest, obj: StoredObject) -> VerificationFailed:
    return VerificationFailed(
        f"backup {manifest.id}: {obj.name} does not match its checksum (stored object damaged)",
        hint="recover from another backup with --backup ID",
    )


def extract(repo: Repository, manifest: Manifest, pgdata: Path) -> int:
    """Extract the backup into ``pgdata`` (which exists and is empty); bytes written."""
    obj = data_object(manifest)
    decoder = repo.decoder(obj.name)
    decoder.check_decode()
    written = 0
    key = repo.object_key(manifest.id, obj.name)
    with repo.open_object(key, obj.sha256, obj.size) as f:
        hashing = _HashingReader(f)
        plain = _IterReader(decoder.decode(hashing, what=f"object {obj.name}"))  # type: ignore[arg-type]
        try:
            with tarfile.open(fileobj=plain, mode="r|", bufsize=1 << 20) as tar:  # type: ignore[call-overload]
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
            plain.read()  # the decoder checks the end (trailing bytes, truncation)
        except (VerificationFailed, tarfile.TarError) as exc:
            hashing.drain()
            if hashing.sha.hexdigest() != obj.sha256:
                raise _mismatch(manifest, obj) from None
            if isinstance(exc, VerificationFailed):
                raise
            raise VerificationFailed(f"backup {manifest.id}: {obj.name}: {exc}") from None
        hashing.drain()
    if hashing.sha.hexdigest() != obj.sha256:
        raise _mismatch(manifest, obj)
    return written
