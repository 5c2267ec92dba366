"""As root, a base backup's files are written by a child running as the server's OS
user: they belong to it as they are made, and the child can reach nothing that user
cannot (so a check missed in the extractor cannot become root)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster import runas
from pgsafe.errors import OperationFailed, VerificationFailed
from pgsafe.recovery.unprivileged import open_writer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege separation is for root")


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def user() -> runas.OsUser:
    u = runas.server_user()
    assert u is not None
    return u


@pytest.fixture
def box() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pgsafe-writer-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_files_are_written_by_the_server_user(box: Path, user: runas.OsUser) -> None:
    dest = box / "dest"
    dest.mkdir(mode=0o700)
    os.chown(dest, user.uid, user.gid)
    w = open_writer(dest, user)
    w.feed(_tar("base/1/1259", b"x" * 1000))
    assert w.finish() == 1000
    st = (dest / "base" / "1" / "1259").stat()
    assert (st.st_uid, st.st_gid) == (user.uid, user.gid)


def test_the_child_cannot_write_where_the_server_user_cannot(box: Path, user: runas.OsUser) -> None:
    dest = box / "root-only"
    dest.mkdir(mode=0o700)  # root's: the child, as the server user, is refused
    w = open_writer(dest, user)
    with pytest.raises(OperationFailed, match="Permission denied"):
        w.feed(_tar("planted", b"x"))
        w.finish()
    w.abort()
    assert not list(dest.iterdir())


def test_the_childs_refusal_comes_back_as_the_same_error(box: Path, user: runas.OsUser) -> None:
    dest = box / "dest"
    dest.mkdir(mode=0o700)
    os.chown(dest, user.uid, user.gid)
    w = open_writer(dest, user)
    with pytest.raises(VerificationFailed, match="outside the directory"):
        w.feed(_tar("../escape", b"x"))
        w.finish()
    w.abort()
    assert not (box / "escape").exists()
