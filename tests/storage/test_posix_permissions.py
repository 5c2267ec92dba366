"""A local repository keeps its secrets to its owner: folders 0700, files 0600, whatever
the umask, including lock files and the repository folder that open_storage creates."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster.runas import repository_owner
from pgsafe.errors import ObjectExists
from pgsafe.repo.repository import open_storage
from pgsafe.repo.storage.posix import PosixStorage


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # the most permissive umask: modes must come from pgsafe itself
    yield
    os.umask(old)


def modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_objects_0600_and_folders_0700(tmp_path: Path, open_umask: None) -> None:
    storage = open_storage(str(tmp_path / "new" / "repo"), create=True, owner=repository_owner())
    assert isinstance(storage, PosixStorage)
    assert stat.S_IMODE((tmp_path / "new" / "repo").stat().st_mode) == 0o700
    storage.put("main/backups/20240101T000000Z/data.zst", [b"x" * 1000])
    storage.put("main/wal/0000000100000000/000000010000000000000001.zst", [b"w"])
    storage.put("pgsafe-repo.json", [b"{}"], overwrite=True)
    storage.put("pgsafe-repo.json", [b"{}"], overwrite=True)
    with pytest.raises(ObjectExists):
        storage.put("pgsafe-repo.json", [b"{}"])
    with storage.lock("main-catalog"):
        pass
    found = modes(tmp_path / "new" / "repo")
    assert found  # something was checked
    for rel, mode in found.items():
        is_dir = (tmp_path / "new" / "repo" / rel).is_dir()
        assert mode == (0o700 if is_dir else 0o600), f"{rel} has mode {oct(mode)}"
    assert not [r for r in found if ".tmp-" in r]  # no temporary file left behind
