"""CLI contract details that need no PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgsafe.__main__ import command_name
from pgsafe.config.settings import load_settings
from pgsafe.errors import BadInput
from tests.conftest import run_pgsafe


def test_command_name_skips_global_options() -> None:
    assert command_name(["--repo", "wal-push", "list"]) == "list"
    assert command_name(["--json", "--repo", "/r", "wal-push", "x"]) == "wal-push"
    assert command_name([]) is None


def test_global_flags_before_and_after_the_command(tmp_path: Path) -> None:
    empty = str(tmp_path / "nothing-here")
    a = run_pgsafe("--json", "--repo", empty, "list")
    b = run_pgsafe("list", "--json", "--repo", empty)
    assert a.returncode == b.returncode == 2
    assert json.loads(a.stdout) == json.loads(b.stdout)
    assert json.loads(a.stdout)["ok"] is False and "no repository" in json.loads(a.stdout)["error"]


def test_config_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text('repo = "/from/file"\nserver = "filesrv"\n[postgres]\nport = 5444\n')
    monkeypatch.delenv("PGSAFE_REPO", raising=False)
    monkeypatch.delenv("PGSAFE_SERVER", raising=False)
    s = load_settings({"config": str(cfg)})
    assert (s.repo, s.server, s.postgres.port) == ("/from/file", "filesrv", 5444)
    monkeypatch.setenv("PGSAFE_REPO", "/from/env")
    assert load_settings({"config": str(cfg)}).repo == "/from/env"
    assert load_settings({"config": str(cfg), "repo": "/from/flag"}).repo == "/from/flag"


def test_bad_config_is_bad_input(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("repo = [unclosed")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_settings({"config": str(cfg)})
    with pytest.raises(BadInput, match="does not exist"):
        load_settings({"config": str(tmp_path / "missing.toml")})


def test_usage_errors_exit_2() -> None:
    r = run_pgsafe("dump", "--format", "zip")
    assert r.returncode == 2
    r = run_pgsafe("no-such-command")
    assert r.returncode == 2
    r = run_pgsafe("verify", "--repo", "/nonexistent")
    assert r.returncode == 2 and "--latest" in r.stderr


def test_the_lazy_command_table_matches_the_modules() -> None:
    """Every command of every command module is in COMMAND_MODULES under its module, and
    nothing else is: a command added to a module but not to the table would be missing."""
    import importlib

    from pgsafe.cli.app import COMMAND_MODULES

    found: dict[str, str] = {}
    for module in sorted(set(COMMAND_MODULES.values())):
        for c in importlib.import_module(f"pgsafe.cli.{module}").COMMANDS:
            assert c.name is not None
            found[c.name] = module
    assert found == COMMAND_MODULES


def test_a_command_imports_only_its_own_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pgsafe.cli.app import run\n"
        "run(['info', '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('pgsafe.cli.commands_')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "['pgsafe.cli.commands_physical']"
