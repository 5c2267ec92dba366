"""Files pgsafe writes into a data directory (recovery settings, signal files) are
written through a descriptor of the folder, never through a link planted in it: a
data directory belongs to the server's OS user, whom root does not trust."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgsafe.cluster import datafiles
from pgsafe.errors import OperationFailed
from tests.conftest import reachable_tmpdir


@pytest.fixture
def dirs() -> tuple[Path, Path]:
    base = reachable_tmpdir("pgsafe-datafiles-")
    data, canary = base / "data", base / "canary"
    data.mkdir()
    canary.mkdir(mode=0o700)
    (canary / "target").write_text("precious\n")
    os.chmod(canary / "target", 0o600)
    return data, canary


def test_append_refuses_a_planted_link(dirs: tuple[Path, Path]) -> None:
    data, canary = dirs
    os.symlink(canary / "target", data / "postgresql.auto.conf")
    with pytest.raises(OperationFailed, match=r"postgresql\.auto\.conf"):
        datafiles.append(data, "postgresql.auto.conf", "evil = 1\n", None)
    assert (canary / "target").read_text() == "precious\n"


def test_create_replaces_a_link_without_following_it(dirs: tuple[Path, Path]) -> None:
    data, canary = dirs
    os.symlink(canary / "target", data / "recovery.signal")
    datafiles.create(data, "recovery.signal", "", None)
    assert not (data / "recovery.signal").is_symlink()
    assert (canary / "target").read_text() == "precious\n"
    assert datafiles.exists(data, "recovery.signal")


def test_the_data_directory_itself_may_not_be_a_link(dirs: tuple[Path, Path]) -> None:
    data, canary = dirs
    link = data.parent / "linked"
    os.symlink(canary, link)
    with pytest.raises(OperationFailed, match="data directory"):
        datafiles.append(link, "target", "evil\n", None)
    assert (canary / "target").read_text() == "precious\n"


def test_remove_unlinks_the_link_not_its_target(dirs: tuple[Path, Path]) -> None:
    data, canary = dirs
    os.symlink(canary / "target", data / "postmaster.pid")
    datafiles.remove(data, "postmaster.pid")
    assert not os.path.lexists(data / "postmaster.pid")
    assert (canary / "target").exists()
