"""wal-push / wal-get start lean: no click, rich or psycopg on their import path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pgsafe.wal.entry import parse_args

HEAVY = ("click", "rich", "psycopg", "psycopg_binary")


def _imported(stderr: str) -> set[str]:
    mods = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return mods


@pytest.mark.parametrize("command", ["wal-get", "wal-push"])
def test_lean_commands_do_not_import_heavy_modules(tmp_path: Path, command: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pgsafe-repo.json").write_text('{"format": 1}\n')
    hist = tmp_path / "00000002.history"
    hist.write_text("1\t0/3000000\tx\n")
    args = (
        [command, "00000002.history", str(tmp_path / "out")]
        if command == "wal-get"
        else [command, str(hist)]
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pgsafe", "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    mods = _imported(proc.stderr)
    assert "pgsafe" in mods and "zstandard" in mods
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_parse_args_accepts_global_options_anywhere() -> None:
    a = parse_args(["--repo", "/r", "wal-get", "--server=db1", "X", "Y", "-v"])
    assert a.command == "wal-get" and a.positional == ["X", "Y"]
    assert a.flags == {"repo": "/r", "server": "db1", "v": True}


def test_wal_get_never_exits_126_or_more(tmp_path: Path) -> None:
    for args in (
        ["wal-get"],
        ["wal-get", "--bogus"],
        ["--repo", str(tmp_path / "no"), "wal-get", "000000010000000000000001", "x"],
    ):
        proc = subprocess.run([sys.executable, "-m", "pgsafe", *args], capture_output=True)
        assert 0 < proc.returncode < 126
