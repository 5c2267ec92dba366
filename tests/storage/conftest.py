"""Every storage backend, behind one ``storage`` fixture: the conformance suite runs each
test against posix, memory, S3 (moto's S3 server on 127.0.0.1) and two mirrors
(``MirrorStorage`` of two posix folders, and of a posix folder and a memory store)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pgsafe.repo.storage.base import Storage
from pgsafe.repo.storage.memory import MemoryStorage
from pgsafe.repo.storage.mirror import Member, MirrorStorage
from pgsafe.repo.storage.posix import PosixStorage
from pgsafe.repo.storage.s3 import S3Storage
from tests.fixtures_s3 import S3Server, s3_bucket, s3_server  # noqa: F401  (pytest fixtures)
from tests.storage.s3_settings import s3_settings

BACKENDS = ["posix", "memory", "s3", "mirror-posix-posix", "mirror-posix-memory"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_pair(
    backend: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Storage, Callable[[], Storage]]]:
    """A storage and a factory of other handles on the same repository (another process
    would open its own)."""
    if backend == "posix":
        d = Path(tempfile.mkdtemp(prefix="pgsafe-conf-"))
        root = d / "repo"
        root.mkdir(mode=0o700)
        yield PosixStorage(root), lambda: PosixStorage(root)
        shutil.rmtree(d, ignore_errors=True)
    elif backend.startswith("mirror-"):
        d = Path(tempfile.mkdtemp(prefix="pgsafe-conf-"))
        first, second = d / "first", d / "second"
        first.mkdir(mode=0o700)
        mem = MemoryStorage()

        def members() -> list[Member]:
            if backend == "mirror-posix-memory":
                return [Member("first", PosixStorage(first)), Member("second", mem)]
            second.mkdir(mode=0o700, exist_ok=True)
            return [Member("first", PosixStorage(first)), Member("second", PosixStorage(second))]

        yield MirrorStorage(members()), lambda: MirrorStorage(members())
        shutil.rmtree(d, ignore_errors=True)
    elif backend == "memory":
        mem = MemoryStorage()
        yield mem, lambda: mem  # one process: the same object
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        url = f"s3://{server.new_bucket()}/repo/prefix"
        yield S3Storage(url, s3_settings()), lambda: S3Storage(url, s3_settings())


@pytest.fixture
def storage(storage_pair: tuple[Storage, Callable[[], Storage]]) -> Storage:
    return storage_pair[0]
