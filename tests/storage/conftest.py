"""Every storage backend, behind one ``storage`` fixture: the conformance suite runs each
test against posix, memory and S3 (moto's S3 server on 127.0.0.1)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pgsafe.repo.storage.base import Storage
from pgsafe.repo.storage.memory import MemoryStorage
from pgsafe.repo.storage.posix import PosixStorage
from pgsafe.repo.storage.s3 import MIN_PART_SIZE, S3Settings, S3Storage
from tests.fixtures_s3 import S3Server, s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

BACKENDS = ["posix", "memory", "s3"]
# S3 parts as small as S3 allows, so that a 12 MiB object is a 3-part upload
PART_SIZE = MIN_PART_SIZE


def s3_settings(**kw: object) -> S3Settings:
    base = S3Settings.from_env()
    return S3Settings(**{**base.__dict__, "part_size": PART_SIZE, "max_attempts": 3, **kw})  # type: ignore[arg-type]


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
