"""The click application: one group, commands registered from their modules."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from pgsafe import __version__
from pgsafe.cli.common import global_options
from pgsafe.errors import PgsafeError


@click.group(context_settings={"help_option_names": ["--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pgsafe")
@global_options
def cli() -> None:
    """pgsafe — PostgreSQL backup, restore and point-in-time recovery, every restore proven."""


def _register() -> None:
    from pgsafe.cli import (
        commands_demo,
        commands_logical,
        commands_ops,
        commands_physical,
        commands_sandbox,
        commands_schedule,
    )

    modules: list[Any] = [
        commands_logical,
        commands_physical,
        commands_ops,
        commands_sandbox,
        commands_demo,
        commands_schedule,
    ]
    for m in modules:
        for c in m.COMMANDS:
            cli.add_command(c)


_register()


def _wants_json(args: list[str]) -> bool:
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _setup_logging(args: list[str]) -> None:
    if "--" in args:  # what follows belongs to another program (pgsafe guard -- ...)
        args = args[: args.index("--")]
    verbose = sum(a.count("v") for a in args if a.startswith("-v") and set(a[1:]) == {"v"})
    verbose += args.count("--verbose")
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="pgsafe: %(levelname)s: %(message)s", stream=sys.stderr)


def run(args: list[str]) -> int:
    _setup_logging(args)
    try:
        rv = cli.main(args=args, prog_name="pgsafe", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):
            return rv  # click returns the code of a click.exceptions.Exit here
    except PgsafeError as exc:
        return _report(args, exc.message, exc.hint, exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        if _wants_json(args):
            _print_json_error(exc.format_message(), None, exc.exit_code)
        else:
            exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 1
    return 0


def _print_json_error(message: str, hint: str | None, code: int) -> None:
    doc = {"ok": False, "error": message, "hint": hint, "exit_code": code}
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _report(args: list[str], message: str, hint: str | None, code: int) -> int:
    if _wants_json(args):
        _print_json_error(message, hint, code)
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"HINT: {hint}", err=True)
    return code
