"""wal-get's fast path (pgsafe.wal.getfast) answers as the full path does, declines
everything else with nothing written, and imports no repository code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgsafe.wal import entry, getfast
from pgsafe.wal.get import get
from tests.unit.test_wal_fastpush import clean_env, make_repo, segment
from tests.unit.test_wal_lean import _imported

__all__ = ["clean_env"]

NAME = "000000010000000000000003"


def _stored(root: Path) -> Path:
    return root / "main" / "wal" / NAME[:16] / f"{NAME}.zst"


def test_reads_what_the_full_path_reads(clean_env: Path) -> None:
    repo = make_repo(clean_env)
    seg = segment(clean_env / NAME, seed=3)
    assert entry.main(["--repo", str(repo.storage.url), "wal-push", str(seg)]) == 0
    flags = {"repo": str(clean_env / "repo")}
    assert getfast.fetch(flags, NAME, str(clean_env / "fast")) is True
    assert get(repo, NAME, str(clean_env / "full"))
    assert (clean_env / "fast").read_bytes() == (clean_env / "full").read_bytes()
    assert (clean_env / "fast").read_bytes() == seg.read_bytes()
    assert getfast.fetch(flags, "000000010000000000000009", str(clean_env / "x")) is False
    assert getfast.fetch(flags, "00000002.history", str(clean_env / "x")) is False
    assert not (clean_env / "x").exists()


@pytest.mark.parametrize("damage", ["truncated", "extended", "flipped"])
def test_damage_is_left_to_the_full_path(clean_env: Path, damage: str) -> None:
    repo = make_repo(clean_env)
    seg = segment(clean_env / NAME, seed=4)
    assert entry.main(["--repo", str(repo.storage.url), "wal-push", str(seg)]) == 0
    obj = _stored(clean_env / "repo")
    data = obj.read_bytes()
    if damage == "truncated":
        data = data[:-7]
    elif damage == "extended":
        data += b"garbage"
    else:
        data = data[:-2] + bytes([data[-2] ^ 0x55]) + data[-1:]
    os.chmod(obj, 0o600)
    obj.write_bytes(data)
    flags = {"repo": str(clean_env / "repo")}
    assert getfast.fetch(flags, NAME, str(clean_env / "out")) is None
    assert not (clean_env / "out").exists()
    # the full path names the damage: exit 2 (3 capped for PostgreSQL), nothing written
    assert (
        entry.main(["--repo", str(clean_env / "repo"), "wal-get", NAME, str(clean_env / "out")])
        == 2
    )
    assert not (clean_env / "out").exists()


def test_other_codecs_and_names_are_declined(clean_env: Path) -> None:
    make_repo(clean_env, {"compression": "lz4", "level": 0, "encryption": None})
    flags = {"repo": str(clean_env / "repo")}
    assert getfast.fetch(flags, NAME, str(clean_env / "out")) is None
    make_repo(clean_env / "z")
    flags = {"repo": str(clean_env / "z" / "repo")}
    for name in (f"{NAME}.partial", f"{NAME}.00000028.backup", "../x", "00000001000000000000000a"):
        assert getfast.fetch(flags, name, str(clean_env / "out")) is None


def test_a_fetch_from_a_local_zstd_repository_imports_no_repository_code(
    clean_env: Path,
) -> None:
    repo = make_repo(clean_env)
    seg = segment(clean_env / NAME, seed=5)
    assert entry.main(["--repo", str(repo.storage.url), "wal-push", str(seg)]) == 0
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pgsafe", "--repo", str(clean_env / "repo"),
         "wal-get", NAME, str(clean_env / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (clean_env / "out").read_bytes() == seg.read_bytes()
    top = _imported(proc.stderr)
    full = _imported(proc.stderr, full=True)
    unwanted = {"typing", "dataclasses", "logging", "pathlib", "json", "re", "hashlib"} & top
    assert not unwanted, sorted(unwanted)
    ours = {"pgsafe.repo.repository", "pgsafe.repo.catalog", "pgsafe.repo.codec.pipeline",
            "pgsafe.wal.get", "pgsafe.repo.storage.posix"} & full  # fmt: skip
    assert not ours, sorted(ours)
