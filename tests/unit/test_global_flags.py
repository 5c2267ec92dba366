"""The one reader of pgsafe's global flags (pgsafe.config.flags) reads a command line as
click does, before and after the command name."""

from __future__ import annotations

from typing import Any

import click
import pytest

from pgsafe.cli.common import global_options
from pgsafe.config import flags
from pgsafe.errors import BadInput

_SEEN: dict[str, Any] = {}


@click.group()
@global_options
def _group() -> None:
    pass


@_group.command("cmd")
@global_options
@click.argument("rest", nargs=-1)
def _cmd(rest: tuple[str, ...]) -> None:
    ctx = click.get_current_context()
    _SEEN.update(flags=dict(ctx.meta.get("pgsafe.flags", {})), rest=list(rest))


def _click(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    _SEEN.clear()
    _group.main(args=args, prog_name="pgsafe", standalone_mode=False)
    return _SEEN["flags"], _SEEN["rest"]


@pytest.mark.parametrize(
    "args",
    [
        ["cmd"],
        ["--repo", "/r", "cmd", "--server=db1", "X", "-v"],
        ["-qv", "cmd", "--json", "Y"],
        ["cmd", "--config", "c.toml", "-vv", "X", "Y"],
        ["-v", "cmd", "-v", "--verbose"],
        ["--repo=", "cmd", "--repo", "/last"],
        ["--json", "cmd", "--", "-v", "--repo"],
        ["-q", "--quiet", "cmd", "-vqv"],
    ],
)
def test_reads_the_global_flags_as_click_does(args: list[str]) -> None:
    stored, rest = _click(args)
    parsed = flags.parse(args)
    assert parsed.command == "cmd"
    assert parsed.positional == rest
    assert parsed.settings_flags() == stored


def test_the_option_tables_are_clicks() -> None:
    names = {
        opt: p.name
        for p in _cmd.params
        if isinstance(p, click.Option)
        for opt in (*p.opts, *p.secondary_opts)
    }
    ours = {**flags.VALUE_OPTIONS, **flags.SWITCHES}
    ours.update({f"-{k}": v for k, v in flags.SHORT_SWITCHES.items()})
    assert ours == {k: v for k, v in names.items() if v in set(ours.values())}


def test_command_name() -> None:
    assert flags.command_name(["--repo", "wal-push", "list"]) == "list"
    assert flags.command_name(["-qv", "--server=x", "wal-get", "a", "b"]) == "wal-get"
    assert flags.command_name(["--json", "dump", "-d", "db"]) == "dump"
    assert flags.command_name(["--repo"]) is None
    assert flags.command_name(["--bogus", "list"]) == "list"


def test_strict_parsing_refuses_other_options_and_missing_values() -> None:
    with pytest.raises(BadInput, match="unknown option --bogus"):
        flags.parse(["wal-push", "--bogus"])
    with pytest.raises(BadInput, match="--server needs a value"):
        flags.parse(["wal-push", "x", "--server"])
    g = flags.parse(["wal-push", "--probe", "-v"], extras=["--probe"])
    assert g.extras == {"--probe": 1} and g.verbose == 1 and g.positional == []


def test_lenient_parsing_for_the_click_application() -> None:
    g = flags.parse(["guard", "-d", "db", "--json", "--", "psql", "-v", "--json"], strict=False)
    assert g.json and g.verbose == 0 and g.unknown == ["-d"]
    assert g.positional == ["db", "psql", "-v", "--json"]
