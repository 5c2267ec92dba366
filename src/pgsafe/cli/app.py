"""The click application: one group, commands registered from their modules."""

from __future__ import annotations

import importlib
import json
import logging

import click

from pgsafe import __version__
from pgsafe.cli.common import global_options, visible
from pgsafe.config import flags
from pgsafe.errors import PgsafeError

# Which module defines each command: a command's module (and what it imports: the demo,
# the scheduler, rich...) is imported only when that command runs, or for --help.  On
# this project's 2-core machine importing every command module cost about 0.1 s of each
# command's start-up.  tests/unit/test_cli_basics.py checks this table against the
# modules' own COMMANDS lists.
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(("dump", "list", "show", "restore", "verify", "export"), "commands_logical"),
    **dict.fromkeys(
        ("archive", "wal-push", "wal-get", "backup", "mark", "info", "recover", "check"),
        "commands_physical",
    ),
    **dict.fromkeys(("expire", "keep", "status", "metrics", "guard", "drill"), "commands_ops"),
    "mistakes": "commands_mistakes",
    **dict.fromkeys(("undo", "restore-table"), "commands_undo"),
    "sandbox": "commands_sandbox",
    "demo": "commands_demo",
    **dict.fromkeys(("daemon", "schedule"), "commands_schedule"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMAND_MODULES` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            module = importlib.import_module(f"pgsafe.cli.{COMMAND_MODULES[cmd_name]}")
            for c in module.COMMANDS:
                if c.name not in self.commands:
                    self.add_command(c)
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="pgsafe")
@global_options
def cli() -> None:
    """pgsafe — PostgreSQL backup, restore and point-in-time recovery, every restore proven."""


def _wants_json(args: list[str]) -> bool:
    """``--json`` among the global flags (:mod:`pgsafe.config.flags`; what follows
    ``--`` belongs to another program: ``pgsafe guard -- ...``)."""
    return flags.parse(args, strict=False).json


def _setup_logging(args: list[str]) -> None:
    verbose = flags.parse(args, strict=False).verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    from pgsafe.cli import redaction

    redaction.setup(level, "pgsafe: %(levelname)s: %(message)s")


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
        code = 2 if isinstance(exc, click.UsageError) else exc.exit_code
        return _report(args, exc.format_message(), _usage_hint(exc), code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 1
    return 0


def _usage_hint(exc: click.ClickException) -> str:
    """Where to read about the flags, for a usage error (one line, as every error)."""
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    path = ctx.command_path if ctx is not None else "pgsafe"
    return f"`{path} --help` lists the arguments and flags"


def _print_json_error(message: str, hint: str | None, code: int) -> None:
    doc = {"ok": False, "error": message, "hint": hint, "exit_code": code}
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _report(args: list[str], message: str, hint: str | None, code: int) -> int:
    message, hint = visible(message), (visible(hint) if hint else hint)
    if _wants_json(args):
        _print_json_error(message, hint, code)
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"HINT: {hint}", err=True)
    return code
