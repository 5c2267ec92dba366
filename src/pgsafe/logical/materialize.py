"""Turning stored objects back into what PostgreSQL's tools read.

Streams go straight from storage through decompression into psql / pg_restore when
they can; a temporary file or folder is made only where pg_restore needs to seek
(parallel restore of a custom archive, the directory format).  Every object's
checksum is verified as it is read; a mismatch raises before the tool sees the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pgsafe import confined
from pgsafe.errors import VerificationFailed
from pgsafe.repo.catalog import Manifest, StoredObject
from pgsafe.repo.repository import Repository


class _CheckedReader:
    """A file-like reader that hashes what passes and checks it at EOF."""

    def __init__(self, repo: Repository, manifest: Manifest, obj: StoredObject) -> None:
        self._f = repo.open_object(repo.object_key(manifest.id, obj.name), obj.sha256, obj.size)
        self._h = hashlib.sha256()
        self._obj = obj
        self._n = 0

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._h.update(data)
        self._n += len(data)
        if not data or (size < 0):
            self._check()
        return data

    def _check(self) -> None:
        if self._h.hexdigest() != self._obj.sha256 or self._n != self._obj.size:
            raise VerificationFailed(
                f"object {self._obj.name} is damaged: its checksum does not match the catalog",
                hint="restore from another backup; `pgsafe verify` checks every object",
            )

    def close(self) -> None:
        self._f.close()


def chunks(repo: Repository, manifest: Manifest, obj: StoredObject) -> Iterator[bytes]:
    """The decoded (decrypted, decompressed), checksum-verified content of one object."""
    decoder = repo.decoder(obj.name)
    decoder.check_decode()  # a missing key is refused before anything is read
    reader = _CheckedReader(repo, manifest, obj)
    try:
        try:
            yield from decoder.decode(reader, what=f"object {obj.name}")  # type: ignore[arg-type]
        except VerificationFailed:
            reader.read()  # a checksum mismatch is the better explanation
            raise
        reader.read()
    finally:
        reader.close()


def write_stored(repo: Repository, manifest: Manifest, obj: StoredObject, dest: Path) -> None:
    """The object decrypted but still compressed (as zstd, lz4 or gzip wrote it), checksum-
    verified, as a new file ``dest`` (0600; never through a link, never over a file)."""
    decoder = repo.decoder(obj.name)
    decoder.check_decode()
    reader = _CheckedReader(repo, manifest, obj)
    try:
        with confined.create_at(dest) as f:
            stored = iter(lambda: reader.read(1 << 20), b"")
            for c in decoder.decrypt_chunks(stored, what=f"object {obj.name}"):
                f.write(c)
    finally:
        reader.close()


def write_file(repo: Repository, manifest: Manifest, obj: StoredObject, dest: Path) -> None:
    """The object's content as a new file ``dest`` (0600; never through a link, never
    over an existing file)."""
    with confined.create_at(dest) as f:
        for c in chunks(repo, manifest, obj):
            f.write(c)


def write_into(
    repo: Repository, manifest: Manifest, obj: StoredObject, dir_fd: int, rel: str
) -> None:
    """The object's content as the new file ``rel`` under the folder ``dir_fd``; ``rel``
    comes from the catalog and is confined to that folder (:mod:`pgsafe.confined`)."""
    with confined.create_file(dir_fd, rel) as f:
        for c in chunks(repo, manifest, obj):
            f.write(c)


def plain_name(obj: StoredObject) -> str:
    """Object name without the codec's suffixes (``.zst``, ``.lz4.age``...)."""
    from pgsafe.repo.codec.pipeline import split_suffix

    return split_suffix(obj.name)[0]


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A private temporary folder under pgsafe's state folder."""
    from pgsafe.config import state_home

    base = state_home() / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(d, 0o700)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def materialize_directory(repo: Repository, manifest: Manifest, prefix: str, dest: Path) -> None:
    """Write the directory-format dump whose objects start with ``prefix`` into ``dest``.

    Each file's name is what follows ``prefix`` in its object's name, created inside
    ``dest`` only (a name such as ``shop.dir//abs/path`` is refused, see
    :mod:`pgsafe.confined`)."""
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    dir_fd = confined.open_dir(dest)
    try:
        for obj in manifest.objects:
            if obj.name.startswith(prefix):
                write_into(repo, manifest, obj, dir_fd, plain_name(obj)[len(prefix) :])
    finally:
        os.close(dir_fd)
