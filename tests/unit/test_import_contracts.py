"""The "lean modules" import-linter contract lists every module wal-push / wal-get load.

import-linter (``make lint``) checks that the listed modules import no click, rich,
psycopg or botocore; this test checks the list itself, so that a module newly loaded
by the WAL endpoints cannot slip past the contract.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lean_sources() -> list[str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = doc["tool"]["importlinter"]["contracts"]
    [lean] = [c for c in contracts if c["id"] == "lean"]
    return list(lean["source_modules"])


def _covered(module: str, sources: list[str]) -> bool:
    if any(module == s or module.startswith(s + ".") for s in sources):
        return True
    init = ROOT / "src" / Path(*module.split(".")) / "__init__.py"  # a package's own file
    tree = ast.parse(init.read_text()) if init.is_file() else None
    return tree is not None and not any(
        isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(tree)
    )


@pytest.mark.parametrize(
    "args",
    [
        ["wal-push", "{hist}"],
        ["wal-get", "00000002.history", "{out}"],
        ["wal-get", "000000010000000000000001", "{out}"],
        ["wal-push", "--probe"],
        ["wal-get", "--probe"],
    ],
)
def test_every_module_the_wal_endpoints_load_is_in_the_lean_contract(
    tmp_path: Path, args: list[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pgsafe-repo.json").write_text('{"format": 1}\n')
    hist = tmp_path / "00000002.history"
    hist.write_text("1\t0/3000000\tx\n")
    argv = [a.format(hist=hist, out=tmp_path / "out") for a in args]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pgsafe", "--repo", str(repo), *argv],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    ours = {m for m in loaded if m.startswith("pgsafe.")}
    assert "pgsafe.wal.entry" in ours
    sources = _lean_sources()
    missing = sorted(m for m in ours if not _covered(m, sources))
    assert not missing, f"add to the lean contract in pyproject.toml: {missing}"
